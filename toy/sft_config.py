"""The SFT policy's architecture and training budget, kept free of torch imports.

:mod:`rlhf_gym.toy.build` reads it from a cached manifest without importing torch or
transformers, so a cache hit stays fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SFTConfig:
    """Architecture and training budget of the SFT policy (hashed into the cache name)."""

    n_embd: int = field(default=128, metadata={"help": "embedding width"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    n_positions: int = field(default=128, metadata={"help": "maximum sequence length"})
    steps: int = field(default=3000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=24, metadata={"help": "sequences per step"})
    lr: float = field(default=5e-3, metadata={"help": "peak AdamW learning rate"})
    warmup_steps: int = field(default=50, metadata={"help": "linear warmup, then cosine decay"})
    max_new_tokens: int = field(default=48, metadata={"help": "sampling length limit"})

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)

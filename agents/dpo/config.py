"""Settings of DPO training, one documented field each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DPOConfig:
    """Optimisation and data settings of :func:`~rlhf_gym.agents.dpo.train_dpo`."""

    kl_coef: float = field(
        default=0.1,
        metadata={
            "help": "β, the KL coefficient: scale of the implicit reward β·log(π/π_ref); "
            "larger stays closer to the reference",
            "min": 0.0,
        },  # fmt: skip
    )
    learning_rate: float = field(
        default=5e-4, metadata={"help": "peak AdamW learning rate", "min": 0.0}
    )
    dpo_epochs: float = field(
        default=2.0, metadata={"help": "passes over the training pairs", "min": 0.0}
    )
    batch_size: int = field(default=32, metadata={"help": "pairs per optimiser step", "min": 1})
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = field(
        default="cosine", metadata={"help": "learning-rate decay after warmup"}
    )
    warmup_ratio: float = field(
        default=0.05,
        metadata={"help": "fraction of steps spent warming up", "min": 0.0, "max": 1.0},
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay", "min": 0.0})
    max_length: int = field(
        default=128, metadata={"help": "longest prompt+completion+EOS in tokens", "min": 2}
    )
    truncation: Literal["error", "left"] = field(
        default="error",
        metadata={"help": "over-long pairs: error, or drop prompt tokens from the left"},
    )
    eval_fraction: float = field(
        default=0.1,
        metadata={
            "help": "share of pairs held out for the implicit-reward accuracy",
            "min": 0.0,
            "max": 1.0,
        },  # fmt: skip
    )
    seed: int = field(default=0, metadata={"help": "seed of the split and the shuffling"})
    logging_steps: int = field(
        default=20, metadata={"help": "log loss and dpo/ metrics every this many steps", "min": 1}
    )
    report_to: Literal["none", "tensorboard", "csv", "wandb"] = field(
        default="none", metadata={"help": "where the training curves go (besides the console)"}
    )
    print_logs: bool = field(
        default=True, metadata={"help": "print the Trainer's loss and eval dicts to stdout"}
    )

"""Follow one env's tokens with a frozen model, for wrappers that need its next-token logits."""

from __future__ import annotations

import numpy as np
import torch
from rlhf_gym.lm.runner import CachedCausalLM
from transformers import PreTrainedModel


class TokenFollower:
    """A 1-row :class:`CachedCausalLM` fed from observations and actions.

    Args:
        model: a causal LM; it is frozen (eval mode, no grad) and kept on its device.
        temperature: logits are divided by it, like the env's.
    """

    def __init__(self, model: PreTrainedModel, temperature: float) -> None:
        self.model = model.eval().requires_grad_(False)
        self.temperature = temperature
        self.runner: CachedCausalLM | None = None
        self.logits: torch.Tensor | None = None

    @torch.no_grad()
    def restart(self, obs: dict[str, np.ndarray]) -> None:
        """Start over from a fresh observation's real tokens (the prompt)."""
        prompt = obs["input_ids"][obs["attention_mask"] == 1].tolist()
        self.runner = CachedCausalLM(self.model, 1, temperature=self.temperature)
        self.logits = self.runner.advance([prompt]).logits

    @torch.no_grad()
    def advance(self, action: int) -> None:
        """Append the action just taken."""
        if self.runner is None:
            raise RuntimeError("step() before reset(); call reset() first.")
        self.logits = self.runner.advance([[int(action)]]).logits

    def current_logits(self) -> torch.Tensor:
        """``(1, V)`` logits for the next token."""
        if self.logits is None:
            raise RuntimeError("no observation yet; call reset() first.")
        return self.logits

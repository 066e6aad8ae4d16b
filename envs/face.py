"""What every env face exposes of its :class:`~rlhf_gym.envs.batch.TextGenerationBatch`.

The agent reaches these through Gymnasium's ``get_wrapper_attr`` or SB3's
``VecEnvWrapper.__getattr__``, so they are plain methods and properties of each face.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rlhf_gym.envs.batch import TextGenerationBatch
from rlhf_gym.envs.groups import set_rounds
from transformers import PreTrainedModel, PreTrainedTokenizerBase


class BatchFace:
    """Mixin: run-time settings and read-only attributes of the batched core ``self.batch``."""

    batch: TextGenerationBatch

    def set_kl_coef(self, kl_coef: float) -> None:
        """Set β, the KL coefficient, for the following steps (e.g. an adaptive controller)."""
        self.batch.set_kl_coef(kl_coef)

    def get_kl_coef(self) -> float:
        """The current β."""
        return self.batch.kl_coef

    def get_state(self) -> dict[str, Any]:
        """The episodes' state, for checkpoints (:meth:`TextGenerationBatch.get_state`)."""
        return self.batch.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue the saved episodes (:meth:`TextGenerationBatch.set_state`)."""
        self.batch.set_state(state)

    def rebuild_caches(self) -> None:
        """Re-encode the live rows in fresh model caches (an agent calls it per rollout)."""
        self.batch.rebuild_caches()

    def hand_over_reference(self, flag: bool) -> None:
        """Take ``log π_ref`` from :meth:`set_reference_logprobs` (True), running no reference.

        For an agent whose act forward already runs the reference (a LoRA policy's base
        weights, ``agents/common/fused_reference.py``); see
        :meth:`TextGenerationBatch.hand_over_reference`.
        """
        self.batch.hand_over_reference(flag)

    @property
    def reference_handed_over(self) -> bool:
        """Whether each step takes ``log π_ref`` from :meth:`set_reference_logprobs`."""
        return self.batch.reference_handed_over

    def set_reference_logprobs(self, logprobs: np.ndarray | Sequence[float]) -> None:
        """Hand over ``(N,)`` ``log π_ref`` of the next step's actions (reference handed over)."""
        self.batch.set_reference_logprobs(logprobs)

    def load_reference_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Replace the reference weights (periodic refresh); live rows' caches are rebuilt."""
        self.batch.load_reference_state_dict(state_dict)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The policy's tokenizer."""
        return self.batch.tokenizer

    @property
    def reference_model(self) -> PreTrainedModel:
        """The frozen reference model."""
        return self.batch.reference_model

    @property
    def max_new_tokens(self) -> int:
        """Completion budget; episodes are truncated after this many tokens."""
        return self.batch.max_new_tokens

    @property
    def max_prompt_tokens(self) -> int:
        """Prompt budget; longer prompts are left-truncated (or refused)."""
        return self.batch.max_prompt_tokens

    @property
    def temperature(self) -> float:
        """Sampling temperature; reference (and bound policy) logits are divided by it."""
        return self.batch.temperature

    @property
    def eos_token_id(self) -> int:
        """The token that terminates an episode."""
        return self.batch.eos_token_id

    @property
    def stop_ids(self) -> list[int]:
        """Every token that terminates an episode (EOS and the generation config's stop ids)."""
        return list(self.batch.models.stop_ids)

    @property
    def pad_token_id(self) -> int:
        """The id filling the observation after the real tokens."""
        return self.batch.pad_token_id

    @property
    def group_size(self) -> int:
        """Rows per prompt group (1: no groups); groups run in rounds (``docs/grpo_rloo.md``)."""
        return self.batch.group_size

    @property
    def rounds(self) -> bool:
        """Whether ended rows wait for every row to end, then all restart together."""
        return self.batch.rounds

    def set_rounds(self, flag: bool) -> None:
        """Run the rows in rounds (True) or let each restart on its own (False), from now on.

        Turned on mid-episode, the round ends once every running episode has ended. Turning it
        off raises with ``group_size`` > 1 (ValueError) or while a row waits (RuntimeError).
        """
        set_rounds(self.batch, flag)

    def at_round_start(self) -> bool:
        """Whether every row is at the first token of its episode and none is waiting."""
        batch = self.batch
        return bool((batch.gen_len == 0).all() and not (batch.waiting | batch.done).any())

    @property
    def kl_estimator(self) -> str:
        """``"k1"`` or ``"k3"``."""
        return self.batch.kl_estimator

"""NLPO-style action masks: only the top-p tokens of a frozen mask model are allowed."""

from __future__ import annotations

from typing import Any

from rlhf_gym.envs.terms import TopPMask
from rlhf_gym.envs.wrappers.faces import EnvTermWrapper, VecEnvTermWrapper, VectorTermWrapper


class TopPMaskArgs:
    """``(env, mask_model, top_p=0.9)``: ``action_masks()`` allows the mask model's top-p set.

    The mask model follows every row with a KV cache (one cached forward per step, its logits
    divided by the env's temperature); the most likely token is always allowed. Equivalent to
    building the env with ``mask_model=``/``mask_top_p=``.
    """

    def __init__(self, env: Any, mask_model: Any, top_p: float = 0.9) -> None:
        term = TopPMask(mask_model, top_p)
        self._install(env, term, True, mask_model=mask_model, top_p=top_p)  # type: ignore[attr-defined]


class TopPMaskWrapper(TopPMaskArgs, EnvTermWrapper):
    """Top-p masks for :class:`~rlhf_gym.envs.TextGenerationEnv` and MaskablePPO."""


class TopPMaskVectorWrapper(TopPMaskArgs, VectorTermWrapper):
    """Top-p masks for :class:`~rlhf_gym.envs.TextGenerationVectorEnv`."""


class TopPMaskVecEnvWrapper(TopPMaskArgs, VecEnvTermWrapper):
    """Top-p masks for :class:`~rlhf_gym.envs.TextGenerationVecEnv` (SB3, MaskablePPO)."""

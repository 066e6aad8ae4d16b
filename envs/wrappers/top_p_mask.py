"""NLPO-style action masks: only the top-p tokens of a frozen mask model are allowed."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from rlhf_gym.envs.rewards import top_p_mask
from rlhf_gym.envs.wrappers.follow import TokenFollower
from transformers import PreTrainedModel


class TopPMaskWrapper(gym.Wrapper, RecordConstructorArgs):
    """Adds ``action_masks()`` for sb3-contrib's MaskablePPO: the top-p set of ``mask_model``.

    The mask model follows the episode's tokens with a KV cache (one cached forward per step)
    and its logits are divided by the env's temperature. Masks are ``(V,)`` bools; the most
    likely token is always allowed. The vector faces take ``mask_model=``/``mask_top_p=`` at
    construction instead, with the same :func:`~rlhf_gym.envs.rewards.top_p_mask`.

    Args:
        env: a :class:`~rlhf_gym.envs.TextGenerationEnv` (or a wrapper of one).
        mask_model: frozen causal LM sharing the policy's vocabulary (NLPO uses a periodically
            synced copy of the policy).
        top_p: probability mass of the allowed set, in (0, 1].
    """

    def __init__(self, env: gym.Env, mask_model: PreTrainedModel, top_p: float = 0.9) -> None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        RecordConstructorArgs.__init__(self, mask_model=mask_model, top_p=top_p)
        gym.Wrapper.__init__(self, env)
        self.top_p = float(top_p)
        self.follower = TokenFollower(mask_model, env.get_wrapper_attr("temperature"))
        self._valid = len(env.get_wrapper_attr("tokenizer"))

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and start following its prompt."""
        obs, info = self.env.reset(**kwargs)
        self.follower.restart(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and move the mask model along."""
        result = self.env.step(action)
        if not (result[2] or result[3]):
            self.follower.advance(int(action))
        return result

    def action_masks(self) -> np.ndarray:
        """``(V,)`` bools: True for the tokens in the mask model's top-p set."""
        return top_p_mask(self.follower.current_logits(), self.top_p, self._valid)[0]

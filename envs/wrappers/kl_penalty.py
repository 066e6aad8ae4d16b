"""A KL penalty against a (further) frozen reference model, added by wrapping."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from rlhf_gym.envs.rewards import check_estimator, kl_term, token_logprobs, token_reward
from rlhf_gym.envs.wrappers.follow import TokenFollower
from transformers import PreTrainedModel


class KLPenaltyWrapper(gym.Wrapper, RecordConstructorArgs):
    """Subtract ``kl_coef · kl_t`` against ``ref_model`` from every step's reward.

    The base env already penalises KL to its own reference with ``kl_coef``; build it with
    ``kl_coef=0`` and wrap to move the penalty into a wrapper, or wrap to add a second
    reference. log π_θ is the inner env's ``info["policy_logprob"]`` (handed over with
    ``set_policy_logprob`` or from a bound policy model), so it must not be NaN. The math is
    :func:`rlhf_gym.envs.rewards.kl_term`, the same as the env's. Adds ``info["wrapper_kl"]`` and
    ``info["wrapper_ref_logprob"]``.

    Args:
        env: a :class:`~rlhf_gym.envs.TextGenerationEnv` (or a wrapper of one).
        ref_model: the frozen reference (eval mode, no grad, kept on its device).
        kl_coef: β of this reference, >= 0.
        estimator: ``"k1"`` or ``"k3"``.
    """

    def __init__(
        self, env: gym.Env, ref_model: PreTrainedModel, kl_coef: float, estimator: str = "k1"
    ) -> None:
        RecordConstructorArgs.__init__(
            self, ref_model=ref_model, kl_coef=kl_coef, estimator=estimator
        )
        gym.Wrapper.__init__(self, env)
        if kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {kl_coef}.")
        self.kl_coef = float(kl_coef)
        self.estimator = check_estimator(estimator)
        self.follower = TokenFollower(ref_model, env.get_wrapper_attr("temperature"))

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and start following its prompt."""
        obs, info = self.env.reset(**kwargs)
        self.follower.restart(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and subtract this reference's KL term."""
        ref_lp = token_logprobs(self.follower.current_logits(), [int(action)])
        obs, reward, terminated, truncated, info = self.env.step(action)
        policy_lp = float(info["policy_logprob"])
        if math.isnan(policy_lp):
            raise RuntimeError(
                "KLPenaltyWrapper needs log π_θ: call set_policy_logprob(...) before each step "
                "or build the env with policy_model=<the policy>."
            )
        kl = kl_term(np.array([policy_lp]), ref_lp, self.estimator)
        reward = float(reward + token_reward(kl, self.kl_coef, np.zeros(1))[0])
        if not (terminated or truncated):
            self.follower.advance(int(action))
        info = {**info, "wrapper_kl": float(kl[0]), "wrapper_ref_logprob": float(ref_lp[0])}
        return obs, reward, terminated, truncated, info

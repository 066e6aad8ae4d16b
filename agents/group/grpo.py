"""GRPO (Shao et al. 2024, DeepSeekMath) for LM policies on a grouped token env.

The env pays the score alone (``kl_coef=0``); the KL to the reference goes in the loss as the
k3 estimator, weighted by ``beta``; advantages are z-scores within each prompt group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rlhf_gym.agents.common.env_api import env_call
from rlhf_gym.agents.group.advantages import grpo_advantages
from rlhf_gym.agents.group.algorithm import LMGroupAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

#: DeepSeekMath's KL coefficient.
GRPO_BETA = 0.04


class LMGRPO(LMGroupAlgorithm):
    """Group Relative Policy Optimization: no value model, ``(R − mean)/(std + eps)`` per group.

    Other arguments are :class:`~rlhf_gym.agents.group.algorithm.LMGroupAlgorithm`'s.

    Args:
        policy: ``"LMPolicy"``; ``policy_kwargs`` need ``model``.
        env: a grouped :class:`~rlhf_gym.envs.TextGenerationVecEnv` built with ``kl_coef=0``.
        beta: the coefficient of the k3 KL to the env's reference, in the loss.
        adaptive_kl: must stay False: the env's β is 0 and ``beta`` is fixed.

    Example:
        >>> env = TextGenerationVecEnv(8, group_size=4, kl_coef=0.0, ...)  # doctest: +SKIP
        >>> LMGRPO("LMPolicy", env, policy_kwargs={"model": "sft"}).learn(8 * 48)  # doctest: +SKIP
    """

    def __init__(
        self,
        policy: str,
        env: GymEnv,
        beta: float = GRPO_BETA,
        adaptive_kl: bool = False,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        if not np.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta}.")
        if adaptive_kl:
            raise ValueError(
                "LMGRPO's KL coefficient is the fixed beta of its loss: adaptive_kl=False."
            )
        self.beta = float(beta)
        super().__init__(
            policy, env, adaptive_kl=False, _init_setup_model=_init_setup_model, **kwargs
        )

    @staticmethod
    def advantages(rewards: np.ndarray) -> np.ndarray:
        """GRPO's within-group z-scores (:func:`grpo_advantages`)."""
        return grpo_advantages(rewards)

    def _loss_beta(self) -> float:
        return self.beta

    def _check_group_env(self) -> int:
        if self.env is not None and env_call(self.env, "get_kl_coef") != 0:
            raise ValueError(
                "LMGRPO puts the KL in its loss (beta); build the env with kl_coef=0 so the "
                "sequence reward is the score alone (LMRLOO keeps the KL in the reward)."
            )
        return super()._check_group_env()

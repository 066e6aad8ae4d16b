"""RLOO (Ahmadian et al. 2024, "Back to Basics") for LM policies on a grouped token env.

The sequence reward is the env's whole episode return, the score plus the per-token
``−β·KL`` the env pays (the KL is in the reward, not the loss); the advantage of each
completion is its reward minus the mean of the other k−1 of its group.
"""

from __future__ import annotations

import numpy as np
from rlhf_gym.agents.group.advantages import rloo_advantages
from rlhf_gym.agents.group.algorithm import LMGroupAlgorithm


class LMRLOO(LMGroupAlgorithm):
    """REINFORCE Leave-One-Out with PPO's clipped ratio: no value model, no KL in the loss.

    Arguments are :class:`~rlhf_gym.agents.group.algorithm.LMGroupAlgorithm`'s; β is the env's
    ``kl_coef`` (steered by the KL controller when ``adaptive_kl``, as for PPO).

    Example:
        >>> env = TextGenerationVecEnv(8, group_size=4, kl_coef=0.05, ...)  # doctest: +SKIP
        >>> LMRLOO("LMPolicy", env, policy_kwargs={"model": "sft"}).learn(8 * 48)  # doctest: +SKIP
    """

    @staticmethod
    def advantages(rewards: np.ndarray) -> np.ndarray:
        """RLOO's leave-one-out differences (:func:`rloo_advantages`)."""
        return rloo_advantages(rewards)

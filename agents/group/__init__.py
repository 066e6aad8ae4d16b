"""Critic-free group algorithms for LM policies: GRPO and RLOO on a grouped token env."""

from rlhf_gym.agents.group.advantages import grpo_advantages, rloo_advantages
from rlhf_gym.agents.group.algorithm import LMGroupAlgorithm
from rlhf_gym.agents.group.grpo import LMGRPO
from rlhf_gym.agents.group.losses import group_losses
from rlhf_gym.agents.group.rloo import LMRLOO

__all__ = [
    "LMGRPO",
    "LMGroupAlgorithm",
    "LMRLOO",
    "grpo_advantages",
    "group_losses",
    "rloo_advantages",
]

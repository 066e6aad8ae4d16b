"""Reward sources: trained Bradley-Terry reward models, ensembles and plain callables."""

from rlhf_gym.reward_models.protocol import CallableReward, RewardSource, as_reward_source, check_scores

__all__ = ["CallableReward", "RewardSource", "as_reward_source", "check_scores"]

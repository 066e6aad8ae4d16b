"""Reward sources: trained Bradley-Terry reward models, ensembles and plain callables."""

from rlhf_gym.reward_models.data import (
    PreferenceData,
    PreferenceDataError,
    PreferencePair,
    load_preferences,
)
from rlhf_gym.reward_models.ensemble import RewardEnsemble
from rlhf_gym.reward_models.length_debias import LengthDebiasedReward
from rlhf_gym.reward_models.model import init_reward_model
from rlhf_gym.reward_models.normalise import normalise_on_policy
from rlhf_gym.reward_models.pipeline import train_reward_model
from rlhf_gym.reward_models.protocol import (
    CallableReward,
    RewardSource,
    as_reward_source,
    check_scores,
)
from rlhf_gym.reward_models.reward_model import RewardModel, load_reward_model
from rlhf_gym.reward_models.trainer import RewardTrainer, RewardTrainingConfig, pairwise_loss

__all__ = [
    "CallableReward",
    "LengthDebiasedReward",
    "PreferenceData",
    "PreferenceDataError",
    "PreferencePair",
    "RewardEnsemble",
    "RewardModel",
    "RewardSource",
    "RewardTrainer",
    "RewardTrainingConfig",
    "as_reward_source",
    "check_scores",
    "init_reward_model",
    "load_preferences",
    "load_reward_model",
    "normalise_on_policy",
    "pairwise_loss",
    "train_reward_model",
]

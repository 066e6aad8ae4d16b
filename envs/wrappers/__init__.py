"""Reward, KL, length and action-mask wrappers for :class:`rlhf_gym.envs.TextGenerationEnv`.

Reward normalisation needs no wrapper of ours: ``gymnasium.wrappers.NormalizeReward`` works on
the env as is (it scales by the running std of the discounted return).
"""

from rlhf_gym.envs.wrappers.kl_penalty import KLPenaltyWrapper
from rlhf_gym.envs.wrappers.length_penalty import LengthPenaltyWrapper
from rlhf_gym.envs.wrappers.reward_score import RewardScoreWrapper
from rlhf_gym.envs.wrappers.top_p_mask import TopPMaskWrapper

__all__ = ["KLPenaltyWrapper", "LengthPenaltyWrapper", "RewardScoreWrapper", "TopPMaskWrapper"]

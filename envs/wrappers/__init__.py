"""Reward, KL, length and action-mask wrappers, for every face of the text env.

Each kind exists three times, one per face: ``XWrapper`` (``gymnasium.Wrapper`` of
:class:`~rlhf_gym.envs.TextGenerationEnv`), ``XVectorWrapper`` (``gymnasium.vector`` of
:class:`~rlhf_gym.envs.TextGenerationVectorEnv`) and ``XVecEnvWrapper`` (SB3, of
:class:`~rlhf_gym.envs.TextGenerationVecEnv`). All install the same term of
:mod:`rlhf_gym.envs.terms` in the core (see :mod:`rlhf_gym.envs.wrappers.faces`). Reward
normalisation needs no wrapper of ours: Gymnasium's ``NormalizeReward`` or SB3's
``VecNormalize(norm_obs=False)`` work on the envs as they are.
"""

from rlhf_gym.envs.wrappers.kl_penalty import (
    KLPenaltyVecEnvWrapper,
    KLPenaltyVectorWrapper,
    KLPenaltyWrapper,
)
from rlhf_gym.envs.wrappers.length_penalty import (
    LengthPenaltyVecEnvWrapper,
    LengthPenaltyVectorWrapper,
    LengthPenaltyWrapper,
)
from rlhf_gym.envs.wrappers.reward_score import (
    RewardScoreVecEnvWrapper,
    RewardScoreVectorWrapper,
    RewardScoreWrapper,
)
from rlhf_gym.envs.wrappers.top_p_mask import (
    TopPMaskVecEnvWrapper,
    TopPMaskVectorWrapper,
    TopPMaskWrapper,
)

__all__ = [
    "KLPenaltyVecEnvWrapper",
    "KLPenaltyVectorWrapper",
    "KLPenaltyWrapper",
    "LengthPenaltyVecEnvWrapper",
    "LengthPenaltyVectorWrapper",
    "LengthPenaltyWrapper",
    "RewardScoreVecEnvWrapper",
    "RewardScoreVectorWrapper",
    "RewardScoreWrapper",
    "TopPMaskVecEnvWrapper",
    "TopPMaskVectorWrapper",
    "TopPMaskWrapper",
]

"""Token-level text-generation envs: one episode logic, three faces, and their registration.

* :class:`TextGenerationEnv`: ``gymnasium.Env``, one episode.
* :class:`TextGenerationVectorEnv`: ``gymnasium.vector.VectorEnv``, natively batched (SAME_STEP).
* :class:`TextGenerationVecEnv`: stable-baselines3 ``VecEnv``.

The ids ``rlhf_gym/TextGeneration-v0`` and ``rlhf_gym/ToyTextGeneration-v0`` are registered by
``import rlhf_gym`` (no torch needed); reward pieces beyond the constructor's are terms
(:mod:`rlhf_gym.envs.terms`), added by the wrappers of :mod:`rlhf_gym.envs.wrappers`.
"""

from rlhf_gym.envs.batch import TextGenerationBatch
from rlhf_gym.envs.rewards import kl_term, score_completions, token_reward, top_p_mask
from rlhf_gym.envs.sb3_vec_env import TextGenerationVecEnv
from rlhf_gym.envs.terms import (
    KLTerm,
    LengthPenalty,
    MissingEOSPenalty,
    RewardTerm,
    ScoreTerm,
    TopPMask,
)
from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.envs.vector import TextGenerationVectorEnv
from rlhf_gym.registration import register_envs

__all__ = [
    "KLTerm",
    "LengthPenalty",
    "MissingEOSPenalty",
    "RewardTerm",
    "ScoreTerm",
    "TopPMask",
    "TextGenerationBatch",
    "TextGenerationEnv",
    "TextGenerationVecEnv",
    "TextGenerationVectorEnv",
    "kl_term",
    "score_completions",
    "token_reward",
    "top_p_mask",
]

register_envs()  # also when this module is imported first (``gymnasium.make("rlhf_gym.envs:...")``)

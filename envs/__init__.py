"""Token-level text-generation envs: one episode logic, three faces, and their registration.

* :class:`TextGenerationEnv`: ``gymnasium.Env``, one episode.
* :class:`TextGenerationVectorEnv`: ``gymnasium.vector.VectorEnv``, natively batched (SAME_STEP).
* :class:`TextGenerationVecEnv`: stable-baselines3 ``VecEnv``.

Importing this module registers ``rlhf_gym/TextGeneration-v0`` and
``rlhf_gym/ToyTextGeneration-v0`` (``gymnasium.make("rlhf_gym.envs:rlhf_gym/...")`` imports it
for you).
"""

import gymnasium
from rlhf_gym.envs.batch import TextGenerationBatch
from rlhf_gym.envs.rewards import kl_term, score_completions, token_reward, top_p_mask
from rlhf_gym.envs.sb3_vec_env import TextGenerationVecEnv
from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.envs.vector import TextGenerationVectorEnv

__all__ = [
    "TextGenerationBatch",
    "TextGenerationEnv",
    "TextGenerationVecEnv",
    "TextGenerationVectorEnv",
    "kl_term",
    "score_completions",
    "token_reward",
    "top_p_mask",
]

_REGISTRATIONS = {
    "rlhf_gym/TextGeneration-v0": (
        "rlhf_gym.envs.text_generation:TextGenerationEnv",
        "rlhf_gym.envs.vector:TextGenerationVectorEnv",
    ),
    "rlhf_gym/ToyTextGeneration-v0": (
        "rlhf_gym.envs.toy:make_toy_env",
        "rlhf_gym.envs.toy:make_toy_vector_env",
    ),
}
for _env_id, (_entry, _vector_entry) in _REGISTRATIONS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry, vector_entry_point=_vector_entry)

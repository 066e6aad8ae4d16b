"""The Gymnasium ids of the text envs, registered without importing torch.

``import rlhf_gym`` (like ``import minigrid`` or ``import ale_py``) calls :func:`register_envs`;
entry points are strings, so the envs' modules and torch load only at ``gymnasium.make``.
"""

from __future__ import annotations

import gymnasium

#: id -> (single-env entry point, vector entry point)
ENV_IDS: dict[str, tuple[str, str]] = {
    "rlhf_gym/TextGeneration-v0": (
        "rlhf_gym.envs.text_generation:TextGenerationEnv",
        "rlhf_gym.envs.vector:TextGenerationVectorEnv",
    ),
    "rlhf_gym/ToyTextGeneration-v0": (
        "rlhf_gym.envs.toy:make_toy_env",
        "rlhf_gym.envs.toy:make_toy_vector_env",
    ),
}


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS` that Gymnasium does not know yet."""
    for env_id, (entry_point, vector_entry_point) in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id, entry_point=entry_point, vector_entry_point=vector_entry_point
            )

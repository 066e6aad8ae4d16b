"""The duck-typed env hooks LM agents use (like sb3-contrib's ``action_masks``), clear errors.

``set_policy_logprobs``, ``set_kl_coef``, ``get_kl_coef``, ``load_reference_state_dict`` and the
``temperature`` attribute of :class:`rlhf_gym.envs.TextGenerationVecEnv`, reached through any
``VecEnvWrapper`` (whose ``__getattr__`` forwards to the wrapped env).
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env import VecEnv


def env_call(env: VecEnv, name: str, *args: Any) -> Any:
    """Call a method of the text env (through any ``VecEnvWrapper``), or explain what is missing."""
    try:
        method = getattr(env, name)
    except AttributeError as err:
        raise TypeError(
            f"{type(env).__name__} has no {name}(); LM agents need "
            "rlhf_gym.envs.TextGenerationVecEnv (or a VecEnv with the same handover methods)."
        ) from err
    return method(*args)


def env_attr(env: VecEnv, name: str) -> Any:
    """An attribute of the text env (through any ``VecEnvWrapper``), or a clear error."""
    try:
        return getattr(env, name)
    except AttributeError as err:
        raise TypeError(
            f"{type(env).__name__} has no {name!r}; LM agents need "
            "rlhf_gym.envs.TextGenerationVecEnv."
        ) from err

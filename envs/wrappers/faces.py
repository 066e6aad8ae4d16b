"""The three faces' wrapper bases: each installs one reward term in the episode core.

A wrapper of ours adds or replaces a term of :mod:`rlhf_gym.envs.terms` in the core that all
faces share, so the term is computed once, batched over every row, whatever face is wrapped;
the wrapper itself then passes every call through. Wrapping therefore changes the wrapped env's
core too (``env.unwrapped`` pays the new reward as well): wrap an env you built for that use.

* :class:`EnvTermWrapper`: ``gymnasium.Wrapper`` for :class:`~rlhf_gym.envs.TextGenerationEnv`;
* :class:`VectorTermWrapper`: ``gymnasium.vector.VectorWrapper`` for
  :class:`~rlhf_gym.envs.TextGenerationVectorEnv`;
* :class:`VecEnvTermWrapper`: SB3 ``VecEnvWrapper`` for :class:`~rlhf_gym.envs.TextGenerationVecEnv`
  (agents reach the env hooks through it, as through ``VecMonitor`` or ``VecNormalize``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from gymnasium.vector import VectorWrapper
from rlhf_gym.envs.batch import TextGenerationBatch
from rlhf_gym.envs.terms import RewardTerm
from stable_baselines3.common.vec_env import VecEnvWrapper


def core_of(env: Any) -> TextGenerationBatch:
    """The episode core under any stack of wrappers, or a clear error."""
    core = getattr(env.unwrapped, "batch", None)
    if not isinstance(core, TextGenerationBatch):
        raise TypeError(
            f"{type(env.unwrapped).__name__} is not an rlhf_gym text env; these wrappers add "
            "reward terms to TextGenerationEnv, TextGenerationVectorEnv or TextGenerationVecEnv."
        )
    return core


class EnvTermWrapper(gym.Wrapper, RecordConstructorArgs):
    """Base of the single-env wrappers: install a term, then pass everything through."""

    def _install(self, env: gym.Env, term: RewardTerm, replace: bool, **args: Any) -> None:
        RecordConstructorArgs.__init__(self, **args)
        gym.Wrapper.__init__(self, env)
        core_of(env).add_term(term, replace=replace)

    def action_masks(self) -> np.ndarray:
        """``(V,)`` allowed tokens of the wrapped env (for MaskablePPO)."""
        return self.env.get_wrapper_attr("action_masks")()


class VectorTermWrapper(VectorWrapper):
    """Base of the ``gymnasium.vector`` wrappers: install a term, then pass through."""

    def _install(self, env: Any, term: RewardTerm, replace: bool, **_: Any) -> None:
        VectorWrapper.__init__(self, env)
        core_of(env).add_term(term, replace=replace)

    def action_masks(self) -> np.ndarray:
        """``(N, V)`` allowed tokens of the wrapped env."""
        return self.env.unwrapped.action_masks()


class VecEnvTermWrapper(VecEnvWrapper):
    """Base of the SB3 ``VecEnv`` wrappers: install a term, then pass through."""

    def _install(self, env: Any, term: RewardTerm, replace: bool, **_: Any) -> None:
        VecEnvWrapper.__init__(self, env)
        core_of(env).add_term(term, replace=replace)

    def reset(self) -> Any:
        """The wrapped env's reset."""
        return self.venv.reset()

    def step_wait(self) -> Any:
        """The wrapped env's step."""
        return self.venv.step_wait()

"""The stable-baselines3 ``VecEnv`` face, so SB3 and sb3-contrib algorithms run unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from rlhf_gym.envs.batch import TextGenerationBatch
from rlhf_gym.envs.face import BatchFace
from rlhf_gym.envs.text_generation import step_info, token_observation_space
from stable_baselines3.common.vec_env import VecEnv

# Methods whose result is per row: env_method slices them instead of repeating one result.
_PER_ROW_METHODS = frozenset({"action_masks"})


class TextGenerationVecEnv(BatchFace, VecEnv):
    """N text-generation episodes behind SB3's ``VecEnv`` API, on one batched core.

    Same MDP, arguments and per-env ``info`` keys as :class:`~rlhf_gym.envs.TextGenerationEnv`.
    ``reset()`` returns the observation only; ``step_wait()`` returns ``(obs, rewards, dones,
    infos)``; an ended env restarts at once, and its info has ``"terminal_observation"`` and
    ``"TimeLimit.truncated"`` (True when cut at ``max_new_tokens`` without EOS).

    The N envs are rows of one object, so ``get_attr``/``set_attr`` read and write that object
    (one value, repeated per index) and ``env_method`` calls it once and repeats its result,
    except per-row methods (``action_masks``) whose ``(N, ...)`` result is split by index.
    With ``rounds=True`` (or :meth:`set_rounds`) the envs run in rounds: an env that ends early
    waits (``done`` once, then its actions are ignored with ``info["waiting"]`` 1, and no model
    forward computes it) until the round's last env ends; every env restarts in that step.
    ``group_size=k`` implies rounds, with adjacent envs of k sharing a prompt (docs/grpo_rloo.md).
    Call :meth:`set_policy_logprobs` right before ``step_async``/``step`` to hand over
    log π_θ, or bind a ``policy_model``, or use ``kl_coef=0``. After
    :meth:`hand_over_reference` ``(True)`` the env runs no reference forward and needs
    :meth:`set_reference_logprobs` (log π_ref) before each step too.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, num_envs: int = 1, *, render_mode: str | None = None, **kwargs: Any) -> None:
        self.batch = TextGenerationBatch(num_envs, **kwargs)
        self.render_mode = render_mode  # read by VecEnv.__init__ through get_attr
        observation_space = token_observation_space(self.batch.vocab_size, self.batch.window)
        super().__init__(num_envs, observation_space, spaces.Discrete(self.batch.vocab_size))
        self._actions: np.ndarray | None = None
        self._started = time.time()

    def reset(self) -> dict[str, np.ndarray]:
        """Restart every env (with the seeds given to :meth:`seed`, if any); obs only."""
        for row, seed in enumerate(self._seeds):
            if seed is not None:
                self.batch.rngs[row] = seeding.np_random(seed)[0]
        self.batch.reset_rows(range(self.num_envs))
        self._reset_seeds()
        self._reset_options()
        return self.batch.observation()

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(
        self,
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every row; ended rows restart and report their last observation in info."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions).")
        actions, self._actions = self._actions, None
        result = self.batch.step(actions, autoreset=True)
        infos: list[dict[str, Any]] = []
        for row in range(self.num_envs):
            info = step_info(result, row)
            episode = result.finished.get(row)
            if episode is not None:
                info["terminal_observation"] = episode.final_obs
                info["TimeLimit.truncated"] = bool(result.truncated[row])
                # what SB3's Monitor reports, so rollout/ep_* needs no VecMonitor
                info["episode"] = {
                    "r": episode.episode_return,
                    "l": len(episode.completion_ids) + int(bool(result.terminated[row])),
                    "t": round(time.time() - self._started, 6),
                }
            infos.append(info)
        dones = result.terminated | result.truncated
        return self.batch.observation(), result.rewards.astype(np.float32), dones, infos

    def set_policy_logprobs(self, logprobs: np.ndarray) -> None:
        """Hand over ``(N,)`` act-time ``log π_θ`` for the next step only."""
        self.batch.set_policy_logprobs(logprobs)

    def action_masks(self) -> np.ndarray:
        """``(N, V)`` bools: the mask model's top-p set, or all real tokens."""
        return self.batch.action_masks()

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: int | Iterable[int] | None = None) -> list[Any]:
        """The attribute of the shared core, once per index."""
        return [getattr(self._owner(attr_name), attr_name)] * len(self._get_indices(indices))

    def set_attr(
        self, attr_name: str, value: Any, indices: int | Iterable[int] | None = None
    ) -> None:
        """Set an attribute; it is shared by all rows, so ``indices`` must cover them all."""
        if len(self._get_indices(indices)) != self.num_envs:
            raise ValueError(
                f"the {self.num_envs} envs share one core; set_attr({attr_name!r}) applies to all "
                "of them, so leave indices=None."
            )
        setattr(self._owner(attr_name), attr_name, value)

    def _owner(self, attr_name: str) -> object:
        """The face if it has the attribute, else the batched core (e.g. missing_eos_penalty)."""
        if hasattr(type(self), attr_name) or attr_name in self.__dict__:
            return self
        if hasattr(self.batch, attr_name):
            return self.batch
        raise AttributeError(f"neither the VecEnv nor its core has an attribute {attr_name!r}.")

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: int | Iterable[int] | None = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the shared core; per-row methods return each index's row."""
        rows = self._get_indices(indices)
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        if method_name in _PER_ROW_METHODS:
            return [result[row] for row in rows]
        return [result] * len(rows)

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: int | Iterable[int] | None = None
    ) -> list[bool]:
        """No Gymnasium wrapper sits inside the batched core."""
        return [False] * len(self._get_indices(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Text env: no images."""
        return [None] * self.num_envs

    def render(self, mode: str | None = None) -> str | None:
        """``"ansi"``: one line of text per env."""
        return "\n".join(self.batch.row_texts())

"""The natively batched Gymnasium ``VectorEnv`` face."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from rlhf_gym.envs.batch import BatchStep, TextGenerationBatch
from rlhf_gym.envs.face import BatchFace
from rlhf_gym.envs.text_generation import episode_info, step_info, token_observation_space


class TextGenerationVectorEnv(BatchFace, VectorEnv):
    """N text-generation episodes stepped with one batched forward per step.

    Same MDP, arguments and ``info`` keys as :class:`~rlhf_gym.envs.TextGenerationEnv`, for
    ``num_envs`` rows. Env ``i`` draws its prompts from its own generator seeded ``seed + i``,
    so it replays exactly what a single env reset with ``seed + i`` would.

    **Autoreset: SAME_STEP.** An episode that ends is restarted within the same ``step``: the
    returned observation is the new episode's first one, and the last observation of the ended
    episode is in ``info["final_obs"][i]`` (its info in ``info["final_info"]``), as Gymnasium's
    ``SyncVectorEnv(autoreset_mode=SAME_STEP)`` does. No step is ever spent on a reset, and every
    action is a real token, which is what a token-level RL agent wants.

    **Rounds:** ``rounds=True`` (or :meth:`set_rounds`) makes a row that ends early wait (its
    actions ignored, reward 0, ``info["waiting"]`` 1, no model forward for it) until the round's
    last row ends, when every row restarts in that step. ``group_size=k`` implies rounds and
    makes adjacent rows of k share a prompt. In rounds ``info["group"]`` holds the group id (the
    episode's id with k = 1; docs/grpo_rloo.md).

    **Policy log-probs:** :meth:`set_policy_logprobs` with shape ``(N,)`` before a step, or a
    bound ``policy_model``, or ``kl_coef=0``. :meth:`action_masks` returns ``(N, V)``.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, *, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}.")
        self.render_mode = render_mode
        self.batch = TextGenerationBatch(num_envs, **kwargs)
        self.num_envs = num_envs
        self.single_observation_space = token_observation_space(
            self.batch.vocab_size, self.batch.window
        )
        self.single_action_space = spaces.Discrete(self.batch.vocab_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Restart every row; ``seed`` int gives row ``i`` the seed ``seed + i``."""
        seeds = (
            seed
            if isinstance(seed, list)
            else [seed if seed is None else seed + i for i in range(self.num_envs)]
        )
        if len(seeds) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}.")
        super().reset(seed=seeds[0])
        for row, row_seed in enumerate(seeds):
            if row_seed is not None:
                self.batch.rngs[row] = seeding.np_random(row_seed)[0]
        self.batch.reset_rows(range(self.num_envs))
        return self.batch.observation(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Append one token per row; ended rows restart in the same step (SAME_STEP)."""
        result = self.batch.step(actions, autoreset=True)
        return (
            self.batch.observation(),
            result.rewards.copy(),
            result.terminated.copy(),
            result.truncated.copy(),
            self._infos(result),
        )

    def _infos(self, result: BatchStep) -> dict[str, Any]:
        """Gymnasium's vector info layout, built from whole arrays (not row by row) each step."""
        infos: dict[str, Any] = {}
        for key, values in result.token_info.items():  # every row has these on every step
            infos[key] = np.array(values, dtype=np.float64)
            infos[f"_{key}"] = np.ones(self.num_envs, dtype=bool)
        for row, episode in result.finished.items():
            final = {"final_obs": episode.final_obs, "final_info": step_info(result, row)}
            infos = self._add_info(infos, final, row)
            infos = self._add_info(infos, episode_info(episode), row)
        return infos

    def set_policy_logprobs(self, logprobs: np.ndarray) -> None:
        """Hand over ``(N,)`` act-time ``log π_θ`` for the next :meth:`step` only."""
        self.batch.set_policy_logprobs(logprobs)

    def action_masks(self) -> np.ndarray:
        """``(N, V)`` bools: the mask model's top-p set, or all real tokens."""
        return self.batch.action_masks()

    def render(self) -> list[str] | None:
        """``"ansi"``: one line of text per row."""
        if self.render_mode != "ansi":
            return None
        return self.batch.row_texts()

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release."""

"""Swap or add a terminal score by wrapping: any reward source, scored on the finished text."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from rlhf_gym.envs.rewards import score_completions
from rlhf_gym.reward_models.protocol import as_reward_source


class RewardScoreWrapper(gym.Wrapper, RecordConstructorArgs):
    """Score each finished episode with ``source`` and put that score into the reward.

    With ``mode="replace"`` (default) the terminal term becomes ``source score +
    info["eos_penalty"]`` in place of the inner env's ``info["score"]`` (so a base env built
    with ``reward=None`` plus this wrapper equals a base env built with ``reward=source``); with
    ``mode="add"`` the source's score is added on top. ``info["score"]`` is updated either way,
    and the per-token KL part of the reward is untouched.

    Args:
        env: a :class:`~rlhf_gym.envs.TextGenerationEnv` (or a wrapper of one).
        source: a reward source or a callable ``f(prompts, completions) -> scores``.
        mode: ``"replace"`` or ``"add"``.
    """

    def __init__(self, env: gym.Env, source: object, mode: Literal["replace", "add"] = "replace"):
        if mode not in ("replace", "add"):
            raise ValueError(f"mode must be 'replace' or 'add', got {mode!r}.")
        RecordConstructorArgs.__init__(self, source=source, mode=mode)
        gym.Wrapper.__init__(self, env)
        self.source = as_reward_source(source)
        self.mode = mode

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step; at the episode's end, score the completion and adjust the reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            score = float(
                score_completions(
                    self.source,
                    [info["prompt"]],
                    [info["completion"]],
                    [info["prompt_ids"]],
                    [info["completion_ids"]],
                )[0]
            )
            old = float(info["score"])
            new = score + float(info["eos_penalty"]) if self.mode == "replace" else old + score
            reward = float(np.float64(reward) + new - old)
            info = {**info, "score": new}
        return obs, reward, terminated, truncated, info

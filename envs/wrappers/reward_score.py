"""Swap or add a terminal score by wrapping: any reward source, scored on the finished text."""

from __future__ import annotations

from typing import Any, Literal

from rlhf_gym.envs.terms import ScoreTerm
from rlhf_gym.envs.wrappers.faces import EnvTermWrapper, VecEnvTermWrapper, VectorTermWrapper

ScoreMode = Literal["replace", "add"]


class RewardScoreArgs:
    """``(env, source, mode="replace")``: the score of each ended episode comes from ``source``.

    ``mode="replace"`` puts ``source`` in place of the env's own reward (a base env built with
    ``reward=None`` plus this wrapper equals one built with ``reward=source``); ``"add"`` adds
    its score on top, reported as ``info["added_score"]``. The missing-EOS penalty, the other
    terminal terms and the per-token KL stay as they are; ``info["score"]`` is the total.
    """

    def __init__(self, env: Any, source: object, mode: ScoreMode = "replace") -> None:
        if mode not in ("replace", "add"):
            raise ValueError(f"mode must be 'replace' or 'add', got {mode!r}.")
        term = ScoreTerm(source, "score" if mode == "replace" else "added_score")
        self._install(env, term, mode == "replace", source=source, mode=mode)  # type: ignore[attr-defined]


class RewardScoreWrapper(RewardScoreArgs, EnvTermWrapper):
    """Reward-source score for :class:`~rlhf_gym.envs.TextGenerationEnv` (see the args class)."""


class RewardScoreVectorWrapper(RewardScoreArgs, VectorTermWrapper):
    """Reward-source score for :class:`~rlhf_gym.envs.TextGenerationVectorEnv`."""


class RewardScoreVecEnvWrapper(RewardScoreArgs, VecEnvTermWrapper):
    """Reward-source score for :class:`~rlhf_gym.envs.TextGenerationVecEnv` (SB3)."""

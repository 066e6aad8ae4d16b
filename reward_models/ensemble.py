"""An ensemble of reward models: mean, min, or a pessimistic mean - k * std."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from rlhf_gym.reward_models.protocol import RewardSource, check_scores
from rlhf_gym.reward_models.reward_model import RewardModel, load_reward_model

Aggregate = Literal["mean", "min", "mean_minus_std"]
ENSEMBLE_FILE = "rlhf_gym_ensemble.json"


class RewardEnsemble:
    """Combine several reward sources into one score per completion.

    Args:
        members: reward sources (typically :class:`RewardModel` trained with different seeds).
        aggregate: ``"mean"``, ``"min"`` or ``"mean_minus_std"`` (``mean - k * std`` across
            members, the usual hedge against reward hacking).
        k: the std multiplier for ``"mean_minus_std"``.
    """

    def __init__(
        self, members: Sequence[RewardSource], aggregate: Aggregate = "mean", k: float = 1.0
    ) -> None:
        if len(members) < 1:
            raise ValueError("RewardEnsemble needs at least one member.")
        if aggregate not in ("mean", "min", "mean_minus_std"):
            raise ValueError(
                f"aggregate must be 'mean', 'min' or 'mean_minus_std', got {aggregate!r}."
            )
        self.members, self.aggregate, self.k = list(members), aggregate, float(k)

    def member_scores(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Scores of every member, shape ``(members, batch)``."""
        return np.stack(
            [
                check_scores(m.score(prompts, completions), len(prompts), f"member {i}")
                for i, m in enumerate(self.members)
            ]
        )

    def combine(self, scores: np.ndarray) -> np.ndarray:
        """Aggregate a ``(members, batch)`` array into ``(batch,)``."""
        if self.aggregate == "mean":
            return scores.mean(axis=0)
        if self.aggregate == "min":
            return scores.min(axis=0)
        return scores.mean(axis=0) - self.k * scores.std(axis=0)

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """One aggregated score per (prompt, completion)."""
        return self.combine(self.member_scores(prompts, completions))

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Save members to ``path/member_<i>`` and settings to ``rlhf_gym_ensemble.json``."""
        if not all(isinstance(m, RewardModel) for m in self.members):
            raise TypeError("only ensembles of RewardModel members can be saved.")
        os.makedirs(path, exist_ok=True)
        names = [f"member_{i}" for i in range(len(self.members))]
        for name, member in zip(names, self.members, strict=True):
            member.save_pretrained(os.path.join(path, name))
        with open(os.path.join(path, ENSEMBLE_FILE), "w", encoding="utf-8") as handle:
            json.dump(
                {"members": names, "aggregate": self.aggregate, "k": self.k}, handle, indent=2
            )

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **member_kwargs: Any) -> RewardEnsemble:
        """Load an ensemble saved by :meth:`save_pretrained`."""
        with open(os.path.join(path, ENSEMBLE_FILE), encoding="utf-8") as handle:
            meta = json.load(handle)
        members = [
            load_reward_model(os.path.join(path, name), **member_kwargs) for name in meta["members"]
        ]
        return cls(members, meta["aggregate"], meta["k"])

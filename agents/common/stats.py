"""Per-episode bookkeeping during a rollout, for the ``objective/`` metrics (docs/metrics.md)."""

from __future__ import annotations

from typing import Any

import numpy as np


class EpisodeTracker:
    """Sums per-token KL and entropy per env and records finished episodes.

    Args:
        num_envs: number of envs (rows).
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self._kl = np.zeros(num_envs)
        self._entropy = np.zeros(num_envs)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._reward = np.zeros(num_envs)
        self.finished: list[dict[str, Any]] = []

    def clear_finished(self) -> None:
        """Forget the episodes recorded so far (the running sums of live episodes stay)."""
        self.finished = []

    def step(
        self,
        entropy: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Add one step of every env; close the episodes that ended on it."""
        self._kl += np.array([info.get("kl", np.nan) for info in infos], dtype=np.float64)
        self._entropy += entropy
        self._length += 1
        self._reward += rewards
        for row in np.flatnonzero(dones):
            info = infos[row]
            self.finished.append(
                {
                    "env": int(row),
                    "kl": float(self._kl[row]),
                    "entropy": float(self._entropy[row]),
                    "length": int(self._length[row]),
                    "score": float(info.get("score", np.nan)),
                    "rlhf_reward": float(self._reward[row]),
                    "completion": info.get("completion", ""),
                    "prompt": info.get("prompt", ""),
                }
            )
            self._kl[row] = self._entropy[row] = self._reward[row] = 0.0
            self._length[row] = 0

    def reset_rows(self, rows: np.ndarray) -> None:
        """Zero the sums of ``rows`` (their episodes restarted without a recorded end)."""
        self._kl[rows] = self._entropy[rows] = self._reward[rows] = 0.0
        self._length[rows] = 0

    def summary(self) -> dict[str, float]:
        """Means over the finished episodes (empty when none finished)."""
        if not self.finished:
            return {}
        keys = ("kl", "entropy", "length", "score", "rlhf_reward")
        means = {key: float(np.mean([ep[key] for ep in self.finished])) for key in keys}
        means["num_episodes"] = float(len(self.finished))
        return means


def objective_metrics(stats: dict[str, float], kl_coef: float) -> dict[str, float | None]:
    """The ``objective/`` and ``time/rollout_s`` keys of docs/metrics.md from a rollout summary."""
    return {
        "objective/kl": stats.get("kl"),
        "objective/entropy": stats.get("entropy"),
        "objective/rlhf_reward": stats.get("rlhf_reward"),
        "objective/scores": stats.get("score"),
        "objective/response_length": stats.get("length"),
        "objective/kl_coef": kl_coef,
        "objective/episodes": stats.get("num_episodes", 0.0),
        "time/rollout_s": stats.get("rollout_s"),
    }

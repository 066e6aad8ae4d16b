"""Per-episode sums of the env's reward terms, for any loop that steps an SB3-style vector env.

The agent's ``objective/`` metrics and the failure-mode monitors both need, per finished
episode, the summed per-token KL, the return, the length and the terminal info (prompt,
completion, score). :class:`EpisodeTracker` is the one place that adds them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def step_kl(info: dict[str, Any]) -> float:
    """The step's KL term: ``info["kl"]``, else ``policy_logprob − ref_logprob``, else NaN."""
    if "kl" in info:
        return float(info["kl"])
    if "policy_logprob" in info and "ref_logprob" in info:
        return float(info["policy_logprob"]) - float(info["ref_logprob"])
    return float("nan")


class EpisodeTracker:
    """Sums KL, entropy, reward and length per env and records each episode as it ends.

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
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: Sequence[dict[str, Any]],
        entropy: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """Add one step of every env; close and return the episodes that ended on it.

        An episode's ``kl`` is NaN when any of its steps had no KL (no policy log-prob). A row
        that waits for its group (``info["waiting"]``, see ``group_size``) adds nothing.
        """
        live = np.array([not info.get("waiting", 0) for info in infos])  # grouped envs: no step
        self._kl += np.array(
            [step_kl(info) if on else 0.0 for info, on in zip(infos, live, strict=True)],
            dtype=np.float64,
        )
        if entropy is not None:
            self._entropy += np.where(live, entropy, 0.0)
        self._length += live
        self._reward += np.where(live, rewards, 0.0)
        ended = []
        for row in np.flatnonzero(dones):
            info = infos[row]
            ended.append(
                {
                    "env": int(row),
                    "kl": float(self._kl[row]),
                    "entropy": float(self._entropy[row]),
                    "length": int(self._length[row]),
                    "score": float(info.get("score", np.nan)),
                    "rlhf_reward": float(self._reward[row]),
                    "completion": info.get("completion", ""),
                    "prompt": info.get("prompt", ""),
                    "info": info,
                }
            )
            self._kl[row] = self._entropy[row] = self._reward[row] = 0.0
            self._length[row] = 0
        self.finished.extend(ended)
        return ended

    def summary(self) -> dict[str, float]:
        """Means over the finished episodes (empty when none finished)."""
        if not self.finished:
            return {}
        keys = ("kl", "entropy", "length", "score", "rlhf_reward")
        means = {key: float(np.mean([ep[key] for ep in self.finished])) for key in keys}
        means["num_episodes"] = float(len(self.finished))
        return means

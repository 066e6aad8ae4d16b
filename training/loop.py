"""Run a PPO job's iterations and keep its curves.

One ``agent.learn`` call runs every iteration (rollout, then update); the held-out evaluation
and the periodic checkpoints are SB3 callbacks, so the same loop serves any agent and any
extra callbacks (the failure-mode monitors).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

from rlhf_gym.agents.common.callbacks import IterationCallback
from rlhf_gym.evaluation.callbacks import HeldOutEvalCallback
from stable_baselines3.common.callbacks import BaseCallback


class IterationCheckpoint(IterationCallback):
    """Save the agent to ``path`` after every ``every`` updates.

    Args:
        path: the checkpoint directory (replaced atomically by the agent's ``save``).
        every: iterations between saves.
    """

    def __init__(self, path: str | os.PathLike, every: int) -> None:
        super().__init__()
        self.path, self.every = path, every

    def on_iteration(self, iteration: int) -> None:
        """Save after every ``every``-th update."""
        if iteration and iteration % self.every == 0:
            self.model.save(self.path)


def run_iterations(
    agent: Any,
    iterations: int,
    evaluation: HeldOutEvalCallback,
    *,
    callbacks: Sequence[BaseCallback] = (),
    progress_bar: bool = False,
) -> list[dict[str, Any]]:
    """Train ``iterations`` rollouts-and-updates, evaluating on held-out prompts after each.

    Returns:
        One record per iteration (iteration 0 is the starting policy): the evaluation's keys
        plus ``step``, ``timesteps``, ``seconds`` (training time, evaluation excluded) and the
        KL coefficient.

    Raises:
        NonFiniteLossError: when an update's loss is not finite (weights are left untouched).
    """
    steps = agent.n_steps * agent.n_envs * iterations
    agent.learn(steps, callback=[evaluation, *callbacks], progress_bar=progress_bar)
    return evaluation.records


def write_curves(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """One CSV row per iteration (step 0 is the starting policy)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)

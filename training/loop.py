"""Run a PPO job's iterations and keep its curves; resume a job that was stopped.

One ``agent.learn`` call runs every iteration (rollout, then update); the held-out evaluation
and the periodic checkpoints are SB3 callbacks, so the same loop serves any agent and any
extra callbacks (the failure-mode monitors). A checkpoint carries the evaluation's records, so
a resumed run (``train-ppo --resume``) writes the same curves as one never stopped
(docs/checkpoints.md).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any

from rlhf_gym.agents.common.callbacks import IterationCallback
from rlhf_gym.evaluation.callbacks import HeldOutEvalCallback
from stable_baselines3.common.callbacks import BaseCallback

#: The checkpoint folder inside a job's output_dir.
CHECKPOINT_DIR = "checkpoint"


class IterationCheckpoint(IterationCallback):
    """Save the agent to ``path`` after every ``every`` updates.

    Args:
        path: the checkpoint directory (replaced kill-safely by the agent's ``save``).
        every: iterations between saves.
        extra: returns the JSON data saved with the agent (the job's config and records).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        every: int,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.path, self.every, self.extra = path, every, extra

    def on_iteration(self, iteration: int) -> None:
        """Save after every ``every``-th update."""
        if not iteration or iteration % self.every:
            return
        if self.extra is None:
            self.model.save(self.path)
        else:
            self.model.save(self.path, extra=self.extra())


def run_iterations(
    agent: Any,
    iterations: int,
    evaluation: HeldOutEvalCallback,
    *,
    callbacks: Sequence[BaseCallback] = (),
    progress: bool = False,
    records: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Train up to ``iterations`` rollouts-and-updates, evaluating on held-out prompts after each.

    Args:
        agent: the agent; for a resumed run, loaded with ``force_reset=False``.
        iterations: the iteration to stop at (counted from the start of the job).
        evaluation: the held-out evaluation callback.
        callbacks: more callbacks, called after the evaluation at each iteration.
        progress: SB3's progress bar.
        records: a resumed run's records so far (from its checkpoint); empty for a new run.

    Returns:
        One record per iteration (iteration 0 is the starting policy): the evaluation's keys
        plus ``step``, ``timesteps``, ``seconds`` (training time, evaluation excluded) and the
        KL coefficient.

    Raises:
        NonFiniteLossError: when an update's loss is not finite (weights are left untouched).
    """
    every = [evaluation, *callbacks]
    done = continue_from(records, every)
    steps = agent.n_steps * agent.n_envs * (iterations - done)
    if steps > 0:
        agent.learn(steps, callback=every, progress_bar=progress, reset_num_timesteps=not records)
    return evaluation.records


def continue_from(records: Sequence[dict[str, Any]], callbacks: Sequence[BaseCallback]) -> int:
    """Make a resumed run's callbacks count on from its last recorded iteration.

    Returns:
        The number of iterations done (0 for a new run).
    """
    if not records:
        return 0
    done = int(records[-1]["step"])
    for callback in callbacks:
        if isinstance(callback, HeldOutEvalCallback):
            callback.start_at(done, records)
        elif isinstance(callback, IterationCallback):
            callback.start_at(done)
    return done


class CurvesWriter(IterationCallback):
    """Rewrite ``curves.csv`` from the evaluation's records after every iteration (rank 0).

    A crash keeps every finished iteration's row. Put it after the evaluation in the callback
    list, so it sees the record of the same boundary.
    """

    main_process_only = True

    def __init__(self, path: str | os.PathLike, evaluation: HeldOutEvalCallback) -> None:
        super().__init__()
        self.path, self.evaluation = path, evaluation

    def on_iteration(self, iteration: int) -> None:
        """Write what the evaluation has recorded so far."""
        write_curves(self.path, self.evaluation.records)


def write_curves(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """One CSV row per iteration (step 0 is the starting policy), replaced atomically."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)

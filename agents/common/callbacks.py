"""Callbacks that act at an LM agent's iteration boundaries, not at every env step.

SB3 calls a callback per env step and around each rollout; an iteration of an on-policy agent
is one rollout followed by one update. :class:`IterationCallback` turns those calls into one
:meth:`~IterationCallback.on_iteration` per boundary: iteration 0 before the first rollout, then
iteration ``n`` once the ``n``-th update has ended (when the next rollout starts, or when
training ends).

In a distributed run every rank has its callbacks. One that writes files (curves, reports) sets
``main_process_only`` so that only rank 0 acts; one that makes a collective call (a checkpoint
save gathers every rank's episodes) must act on every rank, the default.
"""

from __future__ import annotations

from typing import ClassVar

from rlhf_gym.distributed import is_main_process
from stable_baselines3.common.callbacks import BaseCallback


class IterationCallback(BaseCallback):
    """Base class: override :meth:`on_iteration`, called once per iteration boundary."""

    #: Act on rank 0 only (a writer of files); False: on every rank.
    main_process_only: ClassVar[bool] = False

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._updates = 0
        self._seen = -1  # the last boundary handed to on_iteration

    def _on_training_start(self) -> None:
        self._boundary()

    def _on_rollout_end(self) -> None:
        self._updates += 1  # the update that follows this rollout

    def _on_rollout_start(self) -> None:
        self._boundary()

    def _on_training_end(self) -> None:
        self._boundary()

    def _on_step(self) -> bool:
        return True

    def _boundary(self) -> None:
        if self._updates > self._seen:
            self._seen = self._updates
            if is_main_process() or not self.main_process_only:
                self.on_iteration(self._updates)

    def start_at(self, iteration: int) -> None:
        """Count on from ``iteration`` updates already done (a resumed run)."""
        self._updates = self._seen = iteration

    def on_iteration(self, iteration: int) -> None:
        """Act at the boundary after ``iteration`` updates (0: before any)."""
        raise NotImplementedError

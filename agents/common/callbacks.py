"""Callbacks that act at an LM agent's iteration boundaries, not at every env step.

SB3 calls a callback per env step and around each rollout; an iteration of an on-policy agent
is one rollout followed by one update. :class:`IterationCallback` turns those calls into one
:meth:`~IterationCallback.on_iteration` per boundary: iteration 0 before the first rollout, then
iteration ``n`` once the ``n``-th update has ended (when the next rollout starts, or when
training ends).
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class IterationCallback(BaseCallback):
    """Base class: override :meth:`on_iteration`, called once per iteration boundary."""

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
            self.on_iteration(self._updates)

    def start_at(self, iteration: int) -> None:
        """Count on from ``iteration`` updates already done (a resumed run)."""
        self._updates = self._seen = iteration

    def on_iteration(self, iteration: int) -> None:
        """Act at the boundary after ``iteration`` updates (0: before any)."""
        raise NotImplementedError

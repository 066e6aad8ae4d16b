"""Rounds of the episode core, with or without prompt groups: rows that wait for each other.

With ``group_size`` k > 1, rows ``[g·k, (g+1)·k)`` form group g and write to one prompt, drawn
from row ``g·k``'s generator, and the rows run in rounds. ``rounds=True`` (or
:func:`set_rounds`) runs rounds with k = 1: each row draws its own prompt from its own generator,
as without rounds. Every row writes one completion per round; a row that ends early *waits*: its
later actions are ignored (no token, reward 0, not done, ``info["waiting"]`` 1), its
observation stays the final one and the core retires it from its models' forwards. The step in
which the round's last row ends restarts every row at once (SAME_STEP). ``info["group"]`` is
the id of a step's group (with k = 1, of the row's episode), a running counter. Functions of
the core, like :mod:`rlhf_gym.envs.episode_state`; see ``docs/grpo_rloo.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_group_size(num_envs: int, group_size: int) -> None:
    """Refuse a ``group_size`` that does not split ``num_envs`` into whole groups."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}.")
    if num_envs % group_size:
        raise ValueError(
            f"num_envs={num_envs} is not a multiple of group_size={group_size}: groups are "
            "adjacent rows sharing a prompt. Pass num_envs as a multiple of group_size."
        )


def init_groups(core: Any, group_size: int, rounds: bool = False) -> None:
    """Give ``core`` (``num_envs`` set) its group settings and state: none waits yet."""
    check_group_size(core.num_envs, group_size)
    core.group_size = group_size
    core.rounds = bool(rounds) or group_size > 1
    core.waiting = np.zeros(core.num_envs, dtype=bool)  # ended, waiting for its round to end
    core.group = np.zeros(core.num_envs, dtype=np.int64)  # group id of each row's episode
    core.next_group = 0  # the id the next group to start gets (a running counter)


def set_rounds(core: Any, flag: bool) -> None:
    """Run ``core`` in rounds (True) or let rows restart on their own (False).

    Turned on mid-episode, the running episodes get group ids and the round ends when each of
    them has ended.

    Raises:
        ValueError: turning rounds off with ``group_size`` > 1, whose groups need rounds.
        RuntimeError: turning rounds off while a row waits for its round.
    """
    if not flag and core.group_size > 1:
        raise ValueError(
            f"group_size={core.group_size}: prompt groups always run in rounds, so rounds cannot "
            "be turned off. Build the env with group_size=1 for rows that restart on their own."
        )
    if not flag and core.waiting.any():
        raise RuntimeError(
            f"rows {np.flatnonzero(core.waiting).tolist()} wait for the round to end; turn "
            "rounds off at a round's start (after reset(), or once at_round_start() is True)."
        )
    if flag and not core.rounds:  # the running episodes join the round, each its own group
        live = np.flatnonzero(~core.done)
        core.group[live] = core.next_group + np.arange(len(live))
        core.next_group += len(live)
    core.rounds = bool(flag)


def start_rows(core: Any, rows: Sequence[int]) -> list[list[int]]:
    """Start an episode in each of ``rows`` (all of them in rounds); the ids to feed each row."""
    if core.rounds:
        if len(rows) != core.num_envs:
            raise ValueError("in rounds the rows restart together: reset every row.")
        return start_round(core)
    tokens: list[list[int]] = [[] for _ in range(core.num_envs)]
    for row in rows:
        tokens[row] = core._start_episode(row)
    return tokens


def restart_ended(
    core: Any, ended: np.ndarray, tokens: list[list[int]], autoreset: bool
) -> np.ndarray:
    """Restart the ended rows at once (no rounds) or in rounds; fill ``tokens``; the restarted.

    Args:
        core: the episode core.
        ended: rows whose episode ended in this step.
        tokens: the ids each row's models are fed this step, updated in place.
        autoreset: restart (else the ended rows become done, at the round's end in rounds).
    """
    if core.rounds:
        return end_in_round(core, ended, tokens, autoreset)
    restarted = np.zeros(core.num_envs, dtype=bool)
    for row in ended:
        tokens[row] = core._start_episode(row) if autoreset else []
        core.done[row] = not autoreset
    restarted[ended] = autoreset
    return restarted


def start_round(core: Any) -> list[list[int]]:
    """Start every group of ``core`` (a row each with k = 1): one prompt per group; the ids."""
    tokens: list[list[int]] = []
    for first in range(0, core.num_envs, core.group_size):
        index = int(core.rngs[first].integers(len(core.prompt_ids)))
        for row in range(first, first + core.group_size):
            tokens.append(core._start_episode(row, index))
            core.group[row] = core.next_group
        core.next_group += 1
    core.waiting[:] = False
    return tokens


def end_in_round(
    core: Any, ended: np.ndarray, tokens: list[list[int]], autoreset: bool
) -> np.ndarray:
    """Ended rows wait; the round's last end restarts every row. The rows restarted.

    Args:
        core: the episode core.
        ended: rows whose episode ended in this step.
        tokens: the ids each row's models are fed this step, updated in place.
        autoreset: restart at the round's end (else every row becomes done).
    """
    restarted = np.zeros(core.num_envs, dtype=bool)
    core.waiting[ended] = True
    for row in ended:
        tokens[row] = []
    if not core.waiting.all():
        for runner in core._runners.values():  # a waiting row leaves its models' forwards
            runner.retire(ended)
    elif autoreset:  # the round is over: every group restarts in this step
        tokens[:] = start_round(core)
        restarted[:] = True
    else:
        core.done[:], core.waiting[:] = True, False
    return restarted

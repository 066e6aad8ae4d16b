"""Prompt groups of the episode core: adjacent rows that share a prompt and run in rounds.

With ``group_size`` k > 1, rows ``[g·k, (g+1)·k)`` form group g and write to one prompt, drawn
from row ``g·k``'s generator. Every row writes one completion per round; a row that ends early
*waits*: its later actions are ignored (no token, reward 0, not done, ``info["waiting"]`` 1)
and its observation stays the final one. The step in which the round's last row ends restarts
every group at once (SAME_STEP). ``info["group"]`` is the id of a step's group, a running
counter. Functions of the core, like :mod:`rlhf_gym.envs.episode_state`; see
``docs/grpo_rloo.md``.
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


def init_groups(core: Any, group_size: int) -> None:
    """Give ``core`` (``num_envs`` set) its group settings and state: none waits yet."""
    check_group_size(core.num_envs, group_size)
    core.group_size = group_size
    core.waiting = np.zeros(core.num_envs, dtype=bool)  # ended, waiting for its round to end
    core.group = np.zeros(core.num_envs, dtype=np.int64)  # group id of each row's episode
    core.next_group = 0  # the id the next group to start gets (a running counter)


def start_rows(core: Any, rows: Sequence[int]) -> list[list[int]]:
    """Start an episode in each of ``rows`` (all of them with groups); the ids to feed each row."""
    if core.group_size > 1:
        if len(rows) != core.num_envs:
            raise ValueError("with group_size > 1 the rows restart together: reset every row.")
        return start_round(core)
    tokens: list[list[int]] = [[] for _ in range(core.num_envs)]
    for row in rows:
        tokens[row] = core._start_episode(row)
    return tokens


def restart_ended(
    core: Any, ended: np.ndarray, tokens: list[list[int]], autoreset: bool
) -> np.ndarray:
    """Restart the ended rows at once (no groups) or in rounds; fill ``tokens``; the restarted.

    Args:
        core: the episode core.
        ended: rows whose episode ended in this step.
        tokens: the ids each row's models are fed this step, updated in place.
        autoreset: restart (else the ended rows become done, at the round's end with groups).
    """
    if core.group_size > 1:
        return end_in_round(core, ended, tokens, autoreset)
    restarted = np.zeros(core.num_envs, dtype=bool)
    for row in ended:
        tokens[row] = core._start_episode(row) if autoreset else []
        core.done[row] = not autoreset
    restarted[ended] = autoreset
    return restarted


def start_round(core: Any) -> list[list[int]]:
    """Start every group of ``core``: one prompt per group; the ids to feed each row."""
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
    """Ended rows wait; the round's last end restarts every group. The rows restarted.

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
    if core.waiting.all():  # the round is over: every group restarts in this step
        if autoreset:
            tokens[:] = start_round(core)
            restarted[:] = True
        else:
            core.done[:], core.waiting[:] = True, False
    return restarted

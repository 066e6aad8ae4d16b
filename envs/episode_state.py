"""The episode core's state as plain arrays and generator states, for exact checkpoints.

Only data: token buffers, prompt indices, lengths, done flags, running returns, the prompt
groups (waiting rows, group ids, the group counter), each row's numpy generator state and
β. The KV caches are rebuilt from the tokens after a restore.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STATE_ARRAYS = ("ids", "attention", "prompt_len", "gen_len", "prompt_index", "done", "returns")
#: Arrays of the prompt groups; a state saved before groups existed has none (no group waits).
GROUP_ARRAYS = ("waiting", "group")


def episode_state(core: Any) -> dict[str, Any]:
    """A copy of ``core``'s episode state (JSON-able but for the arrays)."""
    names = STATE_ARRAYS + GROUP_ARRAYS
    state: dict[str, Any] = {name: getattr(core, name).copy() for name in names}
    state.update(
        next_group=int(core.next_group),
        rngs=[rng.bit_generator.state for rng in core.rngs],
        kl_coef=core.kl_coef,
    )
    return state


def restore_episode_state(core: Any, state: dict[str, Any]) -> None:
    """Put :func:`episode_state`'s arrays, generators and β back into ``core``.

    Raises:
        ValueError: when the sizes or the prompts in flight do not fit this core.
    """
    for name in STATE_ARRAYS + GROUP_ARRAYS:
        current = getattr(core, name)
        saved = np.asarray(state.get(name, np.zeros_like(current)))
        if saved.shape != current.shape:
            raise ValueError(
                f"the saved {name} has shape {saved.shape}, this env's {current.shape}: "
                "restore into an env with the same num_envs and token budgets."
            )
        setattr(core, name, saved.astype(current.dtype, copy=True))
    for row in np.flatnonzero(~core.done):
        index, prompt = int(core.prompt_index[row]), core.ids[row, : core.prompt_len[row]]
        if index >= len(core.prompt_ids) or prompt.tolist() != list(core.prompt_ids[index]):
            raise ValueError(f"row {row}'s saved prompt is not among this env's prompts.")
    for rng, saved_rng in zip(core.rngs, state["rngs"], strict=True):
        rng.bit_generator.state = saved_rng
    core.next_group = int(state.get("next_group", 0))
    core.set_kl_coef(state["kl_coef"])

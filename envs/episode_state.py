"""The episode core's state as plain arrays and generator states, for exact checkpoints.

Only data: token buffers, prompt indices, lengths, done flags, running returns, the rounds
(waiting rows, group ids, the group counter), each row's numpy generator state and β. The KV
caches are rebuilt from the tokens after a restore (:func:`token_histories`), and
:func:`finished_episode` reads an ended row's episode out of the same arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rlhf_gym.envs.terms import FinishedEpisode
from rlhf_gym.lm.encoding import first_stop

STATE_ARRAYS = ("ids", "attention", "prompt_len", "gen_len", "prompt_index", "done", "returns")
#: Arrays of the rounds; a state saved before rounds existed has none (no row waits).
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
        ValueError: when the sizes or the prompts in flight do not fit this core, or rows wait
            for their round in a core that does not run rounds.
    """
    if np.asarray(state.get("waiting", False)).any() and not core.rounds:
        raise ValueError(
            "the saved episodes are mid-round (some rows wait for the round to end) and this env "
            "does not run rounds; call set_rounds(True) before set_state."
        )
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


def finished_episode(core: Any, row: int, truncated: bool) -> FinishedEpisode:
    """The episode that ended in ``row``, read out of ``core``'s arrays.

    Its prompt, completion (decoded here, once, at its end), ids and last observation; the
    terminal terms fill its score and info afterwards.
    """
    start, stop = core.prompt_len[row], core.prompt_len[row] + core.gen_len[row]
    written = core.ids[row, start:stop].tolist()
    completion_ids = written[: first_stop(written, core.stop_ids)]  # a stop is not content
    index = core.prompt_index[row]
    return FinishedEpisode(
        prompt=core.prompts[index],
        prompt_ids=list(core.prompt_ids[index]),
        completion=core.tokenizer.decode(completion_ids, skip_special_tokens=True),
        completion_ids=completion_ids,
        final_obs={"input_ids": core.ids[row].copy(), "attention_mask": core.attention[row].copy()},
        truncated=truncated,
        info={"eos_penalty": np.float64(0.0)},
    )


def token_histories(core: Any) -> list[list[int]]:
    """Each row's prompt and tokens so far (empty for a row that has ended or waits)."""
    over = core.done | core.waiting
    ends = core.prompt_len + core.gen_len
    return [[] if over[r] else core.ids[r, : ends[r]].tolist() for r in range(core.num_envs)]

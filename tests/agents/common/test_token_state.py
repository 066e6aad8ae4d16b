from __future__ import annotations

import numpy as np
import pytest
import torch
from rlhf_gym.agents.common.token_state import new_tokens


def observation(rows: list[list[int]], width: int = 6) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
    return ids, (ids > 0).astype(np.int64)


def test_new_tokens_feeds_only_what_each_row_has_not_seen() -> None:
    ids, mask = observation([[5, 6, 7], [8, 9]])
    tokens, resets, lengths = new_tokens(np.zeros(2, dtype=np.int64), ids, mask)
    assert tokens == [[5, 6, 7], [8, 9]] and resets == [True, True]  # nothing seen yet
    ids, mask = observation([[5, 6, 7, 10], [8, 9, 11]])
    tokens, resets, lengths = new_tokens(lengths, ids, mask)
    assert tokens == [[10], [11]] and resets == [False, False]
    assert lengths.tolist() == [4, 3]


def test_new_tokens_resets_rows_on_episode_start() -> None:
    seen = np.array([4, 3])
    ids, mask = observation([[5, 6, 7, 10, 12], [4, 4]])
    tokens, resets, lengths = new_tokens(seen, ids, mask, np.array([False, True]))
    assert tokens == [[12], [4, 4]] and resets == [False, True]
    assert lengths.tolist() == [5, 2] and seen.tolist() == [4, 3]  # the input is left alone


def test_new_tokens_refuses_a_shrunk_row_without_episode_start() -> None:
    ids, mask = observation([[5, 6], [8, 9, 11]])
    with pytest.raises(ValueError, match="mark the env's episode start"):
        new_tokens(np.array([4, 3]), ids, mask)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_cached_advance_matches_the_uncached_forward(agent_factory, arch: str) -> None:
    agent = agent_factory(arch, num_envs=3, max_new_tokens=3)
    policy, env = agent.policy, agent.env
    torch.nn.init.normal_(policy.value_head.weight)  # non-zero values depend on the hidden state
    env.set_kl_coef(0.0)  # stepping by hand: no log-prob handover
    state = policy.initial_state(env.num_envs)
    obs, starts = env.reset(), np.ones(env.num_envs, dtype=bool)
    restarts = 0
    for _ in range(8):  # 3-token episodes: rows are reset along the way
        obs_tensor, _ = policy.obs_to_tensor(obs)
        with torch.no_grad():
            step = policy.advance(state, obs_tensor, starts)
            actions, values, log_probs = policy(obs_tensor, deterministic=True)
        torch.testing.assert_close(step.logits.argmax(-1), actions)
        picked = torch.log_softmax(step.logits, -1).gather(1, actions[:, None])[:, 0]
        torch.testing.assert_close(picked, log_probs, atol=1e-4, rtol=0)
        torch.testing.assert_close(step.values, values, atol=1e-4, rtol=0)
        np.testing.assert_array_equal(state.lengths, obs["attention_mask"].sum(axis=1))
        obs, _, starts, _ = env.step(actions.numpy())
        restarts += int(starts.sum())
    assert restarts > 0  # rows were reset mid-state
    assert state.actor.num_forwards == 8  # one cached forward per step, resets included

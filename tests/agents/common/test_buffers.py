from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from rlhf_gym.agents.common import LMRolloutBuffer

W = 8


def filled_buffer(whiten_rewards: bool = False, finish: bool = True) -> LMRolloutBuffer:
    """2 envs x 5 steps; env 0 restarts at step 3, env 1 runs one episode from a longer context.

    ``finish=False`` stops before GAE (values still zero, no segments).
    """
    obs_space = spaces.Dict(
        {
            "input_ids": spaces.Box(0, 99, (W,), np.int64),
            "attention_mask": spaces.Box(0, 1, (W,), np.int64),
        }
    )
    buffer = LMRolloutBuffer(
        5,
        obs_space,
        spaces.Discrete(100),
        device="cpu",
        gamma=1.0,
        gae_lambda=0.95,
        n_envs=2,
        whiten_rewards=whiten_rewards,
    )
    contexts = [[10, 11], [20, 21, 22]]
    for step in range(5):
        ids = np.zeros((2, W), dtype=np.int64)
        mask = np.zeros_like(ids)
        starts = np.array([step in (0, 3), step == 0], dtype=np.float32)
        for env in range(2):
            if starts[env]:
                contexts[env] = [10 + step, 11] if env == 0 else contexts[env]
            ids[env, : len(contexts[env])] = contexts[env]
            mask[env, : len(contexts[env])] = 1
        actions = np.array([[50 + step], [60 + step]])
        buffer.add(
            {"input_ids": ids, "attention_mask": mask},
            actions,
            np.array([0.0, 1.0 * step], dtype=np.float32),
            starts,
            torch.zeros(2),
            torch.full((2,), -1.0),
        )
        for env in range(2):
            contexts[env] = contexts[env] + [int(actions[env, 0])]
    if finish:
        buffer.compute_returns_and_advantage(torch.zeros(2), np.array([True, False]))
    return buffer


def test_segments_follow_episode_starts() -> None:
    buffer = filled_buffer()
    assert sorted(buffer.segments) == [(0, 0, 3), (0, 3, 5), (1, 0, 5)]


def test_sequence_is_context_then_actions() -> None:
    buffer = filled_buffer()
    batches = list(buffer.get_sequences(3, np.random.default_rng(0)))
    assert len(batches) == 1
    batch = batches[0]
    rows = {tuple(batch.input_ids[r][batch.attention_mask[r] == 1].tolist()): r for r in range(3)}
    assert set(rows) == {(10, 11, 50, 51, 52), (13, 11, 53, 54), (20, 21, 22, 60, 61, 62, 63, 64)}
    r = rows[(13, 11, 53, 54)]
    assert batch.positions[r, :2].tolist() == [1, 2]  # token 11 predicts 53, 53 predicts 54
    assert batch.actions[r, :2].tolist() == [53, 54]
    assert batch.token_mask[r].tolist() == [True, True, False, False, False]


def test_advantages_whitened_over_tokens() -> None:
    buffer = filled_buffer()
    assert abs(buffer.advantages.mean()) < 1e-5 and abs(buffer.advantages.std() - 1) < 1e-3
    scaled = filled_buffer(whiten_rewards=True)
    assert abs(scaled.rewards.std() - 1) < 1e-3 and scaled.rewards.mean() > 0  # no mean shift


def test_minibatches_cover_every_sequence_once() -> None:
    buffer = filled_buffer()
    tokens = sum(int(b.token_mask.sum()) for b in buffer.get_sequences(2, np.random.default_rng(1)))
    assert tokens == 10


class LastTokenValue:
    """A value function of the ids alone: the id at each position, plus 1000 x its index."""

    def __init__(self) -> None:
        self.calls, self.rows = 0, 0

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor):
        self.calls, self.rows = self.calls + 1, self.rows + ids.shape[0]
        assert (mask.gather(1, positions) == 1).all(), "a position points at padding"
        return ids.gather(1, positions).float() + 1000 * positions


def test_fill_values_one_call_per_batch_and_bootstrap() -> None:
    buffer = filled_buffer(finish=False)
    buffer.close()
    value_fn = LastTokenValue()
    last = buffer.fill_values(value_fn, 2, np.array([True, False]))
    assert (value_fn.calls, value_fn.rows) == (2, 3)  # 3 segments, 2 per forward
    for step in range(5):  # each step's value is that of its observation's last token
        for env in range(2):
            count = int(buffer.observations["attention_mask"][step, env].sum())
            token = buffer.observations["input_ids"][step, env, count - 1]
            assert buffer.values[step, env] == token + 1000 * (count - 1)
    # env 1 goes on after the rollout: its observation would end with action 64 at index 7
    assert last.tolist() == [0.0, 64 + 1000 * 7]


def test_fill_values_refuses_non_finite_values() -> None:
    buffer = filled_buffer(finish=False)
    buffer.close()
    with pytest.raises(FloatingPointError, match="non-finite values"):
        buffer.fill_values(lambda ids, mask, pos: torch.full(pos.shape, torch.nan), 4, np.ones(2))

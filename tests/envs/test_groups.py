"""Prompt groups: adjacent rows share a prompt, run in rounds, wait for each other."""

from __future__ import annotations

import numpy as np
import pytest
from rlhf_gym.envs import TextGenerationVecEnv, TextGenerationVectorEnv


def grouped(env_kwargs: dict, num_envs: int = 6, group_size: int = 3, **kwargs):
    return TextGenerationVecEnv(num_envs, group_size=group_size, **{**env_kwargs, **kwargs})


def prompts_of(obs: dict) -> list[tuple[int, ...]]:
    return [
        tuple(ids[mask == 1])
        for ids, mask in zip(obs["input_ids"], obs["attention_mask"], strict=True)
    ]


def step_round(env, rng: np.random.Generator, eos: int, max_steps: int = 20):
    """Step random actions (EOS often) until every row ended once; per-step records."""
    records, ended = [], np.zeros(env.num_envs, dtype=bool)
    for _ in range(max_steps):
        actions = np.where(rng.random(env.num_envs) < 0.4, eos, rng.integers(3, 8, env.num_envs))
        obs, rewards, dones, infos = env.step(actions)
        assert env.at_round_start() == (ended | dones).all()
        records.append((obs, rewards, dones, infos, ended.copy()))
        ended |= dones
        if ended.all():
            return records
    raise AssertionError("the round never ended")


def test_groups_share_a_prompt_and_start_together(env_kwargs) -> None:
    env = grouped(env_kwargs, num_envs=6, group_size=3)
    differ = 0
    for seed in range(5):  # each group draws from its own generator
        env.seed(seed)
        prompts = prompts_of(env.reset())
        assert prompts[0] == prompts[1] == prompts[2] and prompts[3] == prompts[4] == prompts[5]
        differ += prompts[0] != prompts[3]
    assert differ > 0
    assert env.at_round_start() and env.group_size == 3
    obs, _, _, infos = env.step(np.full(6, 5))
    assert [info["group"] for info in infos] == [8, 8, 8, 9, 9, 9]  # the 5th reset's groups
    assert all(info["waiting"] == 0 for info in infos)


def test_rows_wait_for_the_round_and_restart_together(env_kwargs) -> None:
    env = grouped(env_kwargs, num_envs=4, group_size=2, max_new_tokens=5)
    env.seed(1)
    env.reset()
    eos = env.eos_token_id
    records = step_round(env, np.random.default_rng(0), eos)
    for _obs, rewards, dones, infos, ended_before in records[:-1]:
        waiting = np.array([info["waiting"] for info in infos]) == 1
        np.testing.assert_array_equal(waiting, ended_before)  # exactly the rows already ended
        assert not (dones & ended_before).any()  # a waiting row never ends twice
        assert (rewards[waiting] == 0).all()
    assert len(records) > 1 and any(r[4].any() for r in records)  # some row waited
    last_obs, _, last_dones, last_infos, _ = records[-1]
    assert last_dones.any() and env.at_round_start()  # the round's last row restarted them all
    prompts = prompts_of(last_obs)
    assert prompts[0] == prompts[1] and prompts[2] == prompts[3]
    _, _, _, infos = env.step(np.full(4, 5))
    assert [info["group"] for info in infos] == [2, 2, 3, 3]  # a running counter


def test_waiting_rows_keep_their_final_observation(env_kwargs) -> None:
    env = grouped(env_kwargs, num_envs=2, group_size=2, max_new_tokens=4)
    env.reset()
    eos = env.eos_token_id
    obs, _, dones, infos = env.step(np.array([eos, 5]))
    assert dones.tolist() == [True, False]
    np.testing.assert_array_equal(
        obs["input_ids"][0], infos[0]["terminal_observation"]["input_ids"]
    )
    again, rewards, dones, infos = env.step(np.array([6, 6]))  # row 0's 6 is ignored
    np.testing.assert_array_equal(again["input_ids"][0], obs["input_ids"][0])
    assert infos[0]["waiting"] == 1 and rewards[0] == 0 and not dones[0]
    assert infos[0]["ref_logprob"] == 0 and infos[0]["kl"] == 0


def test_gymnasium_face_groups(env_kwargs) -> None:
    env = TextGenerationVectorEnv(4, group_size=2, **env_kwargs)
    obs, _ = env.reset(seed=3)
    prompts = prompts_of(obs)
    assert prompts[0] == prompts[1] and prompts[2] == prompts[3]
    _, _, _, _, info = env.step(np.array([env.batch.eos_token_id, 5, 5, 5]))
    assert info["group"].tolist() == [0, 0, 1, 1]
    _, _, _, _, info = env.step(np.full(4, 5))
    assert info["waiting"].tolist() == [1, 0, 0, 0]


def test_group_size_must_divide_num_envs(env_kwargs) -> None:
    with pytest.raises(ValueError, match="num_envs=6 is not a multiple of group_size=4"):
        grouped(env_kwargs, num_envs=6, group_size=4)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        grouped(env_kwargs, num_envs=4, group_size=0)


def test_state_round_trip_mid_round(env_kwargs) -> None:
    env = grouped(env_kwargs, num_envs=4, group_size=2)
    env.seed(2)
    env.reset()
    env.step(np.array([env.eos_token_id, 5, 5, 5]))
    state = env.get_state()
    twin = grouped(env_kwargs, num_envs=4, group_size=2)
    twin.set_state(state)
    actions = np.array([6, env.eos_token_id, 6, 6])
    obs, rewards, dones, infos = env.step(actions)
    twin_obs, twin_rewards, twin_dones, twin_infos = twin.step(actions)
    np.testing.assert_array_equal(obs["input_ids"], twin_obs["input_ids"])
    np.testing.assert_allclose(rewards, twin_rewards, atol=1e-6)
    assert [i["waiting"] for i in infos] == [i["waiting"] for i in twin_infos] == [1, 0, 0, 0]


def test_episode_tracker_skips_rows_that_wait_for_their_group() -> None:
    from rlhf_gym.envs.episodes import EpisodeTracker

    tracker = EpisodeTracker(2)
    live, waiting = {"kl": 0.5}, {"kl": 0.0, "waiting": 1}
    tracker.step(np.array([1.0, 2.0]), np.array([False, True]), [live, live])
    tracker.step(np.array([1.0, 9.0]), np.array([False, False]), [live, waiting])
    ended = tracker.step(np.array([1.0, 0.0]), np.array([True, False]), [live, waiting])
    assert len(ended) == 1 and ended[0]["length"] == 3 and ended[0]["rlhf_reward"] == 3.0
    assert tracker._length[1] == 0 and tracker._reward[1] == 0.0  # the waiting row added nothing

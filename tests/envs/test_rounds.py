"""Rounds without prompt groups: each row draws its own prompt, ended rows wait for the rest."""

from __future__ import annotations

import numpy as np
import pytest
from env_helpers import positive_word_reward
from gymnasium.utils import seeding
from identity import expected_return, teacher_forced_logprobs
from rlhf_gym.envs import TextGenerationEnv, TextGenerationVecEnv, TextGenerationVectorEnv
from test_groups import prompts_of, step_round

pytestmark = pytest.mark.usefixtures("one_thread")


def in_rounds(env_kwargs: dict, num_envs: int = 4, **kwargs) -> TextGenerationVecEnv:
    return TextGenerationVecEnv(num_envs, rounds=True, **{**env_kwargs, **kwargs})


def batch_rows_of(model) -> list[int]:
    """The batch size of every later forward of ``model``, appended as they run."""
    sizes: list[int] = []
    model.register_forward_pre_hook(
        lambda _m, _a, kwargs: sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    return sizes


def test_rows_draw_their_own_prompts_wait_and_restart_together(env_kwargs) -> None:
    env = in_rounds(env_kwargs)
    env.seed(5)
    obs = env.reset()
    assert env.rounds and env.group_size == 1 and env.at_round_start()
    rngs = [seeding.np_random(5 + row)[0] for row in range(4)]  # what each row draws alone
    prompt_ids = env.batch.prompt_ids

    def drawn() -> list[tuple[int, ...]]:
        return [tuple(prompt_ids[int(rng.integers(len(prompt_ids)))]) for rng in rngs]

    assert prompts_of(obs) == drawn()
    records = step_round(env, np.random.default_rng(0), env.eos_token_id)
    groups = []
    for _obs, rewards, dones, infos, ended_before in records[:-1]:
        waiting = np.array([info["waiting"] for info in infos]) == 1
        np.testing.assert_array_equal(waiting, ended_before)
        assert not (dones & ended_before).any() and (rewards[waiting] == 0).all()
        assert all(info["ref_logprob"] == 0 for info in np.array(infos)[waiting])
        groups.append([info["group"] for info in infos])
    assert len(records) > 2 and any(r[4].any() for r in records)  # some row waited
    assert all(g == [0, 1, 2, 3] for g in groups)  # each row's episode has its own id
    assert prompts_of(records[-1][0]) == drawn() and env.at_round_start()
    _, _, _, infos = env.step(np.full(4, 5))
    assert [info["group"] for info in infos] == [4, 5, 6, 7]


def test_every_episode_matches_a_row_by_row_computation(env_kwargs) -> None:
    """Per-token log-probs and each episode's return, against teacher-forced forwards."""
    env = in_rounds(env_kwargs, num_envs=6)
    policy, reference = env_kwargs["policy_model"], env_kwargs["reference_model"]
    env.seed(1)
    env.reset()
    rng, checked = np.random.default_rng(2), 0
    for _ in range(3):
        logprobs: list[list[float]] = [[] for _ in range(6)]
        for _obs, _rewards, dones, infos, ended_before in step_round(env, rng, env.eos_token_id):
            for row in np.flatnonzero(~ended_before):
                logprobs[row].append(infos[row]["ref_logprob"])
            for row in np.flatnonzero(dones):
                info = infos[row]
                final = info["terminal_observation"]
                ids = final["input_ids"][final["attention_mask"] == 1].tolist()
                prompt, actions = info["prompt_ids"], ids[len(info["prompt_ids"]) :]
                score = positive_word_reward([info["prompt"]], [info["completion"]])[0]
                want = teacher_forced_logprobs(reference, prompt, actions, 1.0)
                np.testing.assert_allclose(logprobs[row], want, atol=1e-5)
                expected = expected_return(policy, reference, prompt, actions, score, 0.1)
                assert info["episode"]["r"] == pytest.approx(expected, abs=1e-5)
                checked += 1
    assert checked == 18


def test_waiting_rows_leave_the_reference_forwards(env_kwargs) -> None:
    """Each forward computes only the rows that do not wait (4 rows: each drops at once)."""
    env = in_rounds(env_kwargs, num_envs=4)
    sizes = batch_rows_of(env_kwargs["reference_model"])
    env.seed(0)
    env.reset()
    records = step_round(env, np.random.default_rng(3), env.eos_token_id)
    env.step(np.full(4, 5))  # runs the last step's forward (the new prompts), then its own
    expected = [4]  # the prompts
    for _obs, _rewards, dones, _infos, ended_before in records:
        ended = (ended_before | dones).sum()
        expected.append(4 if ended == 4 else 4 - ended)  # the round's end restarts all rows
    assert sizes == expected + [4]
    assert min(sizes) < 4


def test_set_rounds_turns_rounds_on_and_off(env_kwargs) -> None:
    env = TextGenerationVecEnv(2, **env_kwargs)
    assert not env.rounds
    env.env_method("set_rounds", True)  # as an agent does at setup, before reset()
    env.reset()
    eos = env.eos_token_id
    _, _, dones, infos = env.step(np.array([eos, 5]))
    assert dones.tolist() == [True, False] and infos[1]["waiting"] == 0
    _, rewards, dones, infos = env.step(np.array([6, 5]))
    assert infos[0]["waiting"] == 1 and rewards[0] == 0
    with pytest.raises(RuntimeError, match=r"rows \[0\] wait for the round to end"):
        env.set_rounds(False)
    env.step(np.array([6, eos]))  # the round ends: both restart
    env.set_rounds(False)
    _, _, dones, infos = env.step(np.array([eos, 5]))
    assert dones[0] and "waiting" not in infos[1]
    _, _, dones, _ = env.step(np.array([5, 5]))  # row 0 restarted on its own
    assert not env.rounds and not dones.any()


def test_rounds_turned_on_mid_episode_label_the_running_episodes(env_kwargs) -> None:
    env = TextGenerationVecEnv(3, **env_kwargs)
    env.reset()
    env.step(np.full(3, 5))
    env.set_rounds(True)
    _, _, dones, infos = env.step(np.array([env.eos_token_id, 5, 5]))
    assert dones[0] and [info["group"] for info in infos] == [0, 1, 2]
    _, _, _, infos = env.step(np.full(3, 6))
    assert [info["waiting"] for info in infos] == [1, 0, 0]


def test_groups_cannot_leave_rounds(env_kwargs) -> None:
    env = TextGenerationVecEnv(4, group_size=2, **env_kwargs)
    assert env.rounds
    with pytest.raises(ValueError, match="group_size=2: prompt groups always run in rounds"):
        env.set_rounds(False)


def test_state_round_trip_mid_round(env_kwargs) -> None:
    env = in_rounds(env_kwargs)
    env.seed(2)
    env.reset()
    env.step(np.array([env.eos_token_id, 5, 5, 5]))
    state = env.get_state()
    with pytest.raises(ValueError, match="mid-round .* call set_rounds\\(True\\) before"):
        TextGenerationVecEnv(4, **env_kwargs).set_state(state)
    twin = in_rounds(env_kwargs)
    twin.set_state(state)
    assert twin.batch._runners["ref"].last_batch_rows == 3  # the waiting row is retired
    for actions in ([6, env.eos_token_id, 6, 6], [6, 6, 6, 6]):
        obs, rewards, dones, infos = env.step(np.array(actions))
        twin_obs, twin_rewards, twin_dones, twin_infos = twin.step(np.array(actions))
        np.testing.assert_array_equal(obs["input_ids"], twin_obs["input_ids"])
        np.testing.assert_allclose(rewards, twin_rewards, atol=1e-6)
        assert [i["waiting"] for i in infos] == [i["waiting"] for i in twin_infos]
        assert [i["group"] for i in infos] == [i["group"] for i in twin_infos]
    assert [i["waiting"] for i in infos] == [1, 1, 0, 0]


def test_the_gymnasium_faces_in_rounds(env_kwargs) -> None:
    vector = TextGenerationVectorEnv(3, rounds=True, **env_kwargs)
    vector.reset(seed=4)
    eos = vector.eos_token_id
    _, _, _, _, info = vector.step(np.array([eos, 5, 5]))
    assert info["group"].tolist() == [0, 1, 2] and info["waiting"].tolist() == [0, 0, 0]
    _, rewards, _, _, info = vector.step(np.full(3, 5))
    assert info["waiting"].tolist() == [1, 0, 0] and rewards[0] == 0
    single = TextGenerationEnv(rounds=True, **env_kwargs)  # one row: each episode a round
    single.reset(seed=0)
    _, _, terminated, _, info = single.step(eos)
    assert terminated and info["waiting"] == 0 and single.at_round_start() is False
    single.reset(seed=0)
    assert single.at_round_start() and single.step(5)[4]["group"] == 1

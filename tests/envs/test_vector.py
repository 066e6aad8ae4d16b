from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import rlhf_gym.envs  # noqa: F401  (registers the env ids)
from gymnasium.vector import AutoresetMode
from rlhf_gym.envs import TextGenerationEnv, TextGenerationVecEnv, TextGenerationVectorEnv

N, STEPS, SEED = 3, 14, 7


def action_plan(vocab: int, eos: int) -> np.ndarray:
    """(STEPS, N) actions with some EOS so episodes end at different times."""
    rng = np.random.default_rng(0)
    actions = rng.integers(3, vocab, size=(STEPS, N))
    actions[rng.random((STEPS, N)) < 0.2] = eos
    return actions


def single_env_returns(env_kwargs, actions) -> list[list[float]]:
    returns = []
    for i in range(N):
        env = TextGenerationEnv(**env_kwargs)
        env.reset(seed=SEED + i)
        done_returns, total = [], 0.0
        for t in range(STEPS):
            _, reward, terminated, truncated, _ = env.step(actions[t, i])
            total += reward
            if terminated or truncated:
                done_returns.append(total)
                total = 0.0
                env.reset()
        returns.append(done_returns)
    return returns


def test_vector_env_matches_n_single_envs(env_kwargs, tokenizer):
    actions = action_plan(len(tokenizer), tokenizer.eos_token_id)
    want = single_env_returns(env_kwargs, actions)
    vec = TextGenerationVectorEnv(N, **env_kwargs)
    vec.reset(seed=SEED)
    got, totals = [[] for _ in range(N)], np.zeros(N)
    for t in range(STEPS):
        _, rewards, terminated, truncated, infos = vec.step(actions[t])
        totals += rewards
        for i in np.flatnonzero(terminated | truncated):
            got[i].append(totals[i])
            totals[i] = 0.0
            assert infos["_final_obs"][i] and infos["final_obs"][i]["input_ids"].shape == (11,)
    assert [len(g) for g in got] == [len(w) for w in want] and sum(len(w) for w in want) >= N
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_same_step_autoreset_and_info_layout(env_kwargs, tokenizer):
    vec = TextGenerationVectorEnv(N, **env_kwargs)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, _ = vec.reset(seed=0)
    assert obs["input_ids"].shape == (N, 11) and vec.observation_space.contains(obs)
    eos = tokenizer.eos_token_id
    obs, rewards, terminated, truncated, infos = vec.step(np.array([eos, 5, 5]))
    assert terminated.tolist() == [True, False, False] and rewards.shape == (N,)
    ended_prompt = tokenizer(infos["final_info"]["prompt"][0]).input_ids
    final = infos["final_obs"][0]
    assert final["input_ids"][: len(ended_prompt) + 1].tolist() == [*ended_prompt, eos]
    assert final["attention_mask"].sum() == len(ended_prompt) + 1
    restarted = obs["input_ids"][0][obs["attention_mask"][0] == 1].tolist()
    assert restarted in [tokenizer(p).input_ids for p in env_kwargs["prompts"]]
    assert infos["_completion"].tolist() == [True, False, False] and infos["completion"][0] == ""
    assert infos["kl"].shape == (N,)


def test_vector_handover_and_errors(env_kwargs):
    kwargs = {**env_kwargs, "policy_model": None}
    vec = TextGenerationVectorEnv(N, **kwargs)
    vec.reset(seed=0)
    with pytest.raises(RuntimeError, match="set_policy_logprob"):
        vec.step(np.array([5, 5, 5]))
    vec.set_policy_logprobs(np.array([-1.0, -2.0, -3.0]))
    *_, infos = vec.step(np.array([5, 5, 5]))
    assert infos["policy_logprob"].tolist() == [-1.0, -2.0, -3.0]
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        vec.set_policy_logprobs(np.zeros(2))
    with pytest.raises(ValueError, match="outside the action space"):
        vec.step(np.array([5, 999, 5]))
    assert vec.action_masks().shape == (N, vec.single_action_space.n)


def test_make_vec_uses_the_native_vector_entry_point(env_kwargs):
    vec = gym.make_vec("rlhf_gym/TextGeneration-v0", num_envs=2, **env_kwargs)
    assert isinstance(vec.unwrapped, TextGenerationVectorEnv)
    obs, _ = vec.reset(seed=0)
    assert obs["input_ids"].shape == (2, 11)


@pytest.mark.parametrize("mode", ["sync", pytest.param("async", marks=pytest.mark.slow)])
def test_gymnasium_sync_and_async_vector_envs_run_it(env_kwargs, mode):
    # torch's thread pool is not fork-safe: AsyncVectorEnv needs the "spawn" context.
    vector_kwargs = {"context": "spawn"} if mode == "async" else {}
    vec = gym.make_vec(
        "rlhf_gym/TextGeneration-v0",
        num_envs=2,
        vectorization_mode=mode,
        vector_kwargs=vector_kwargs,
        **env_kwargs,
    )
    vec.reset(seed=0)
    finished = 0
    for _ in range(6):
        _, rewards, terminated, truncated, _ = vec.step(vec.action_space.sample())
        assert np.isfinite(rewards).all()
        finished += int((terminated | truncated).sum())
    assert finished >= 2  # max_new_tokens=5: every env ended once in 6 steps
    vec.close()


def test_sb3_face_reset_is_reproducible(env_kwargs):
    a, b = TextGenerationVecEnv(2, **env_kwargs), TextGenerationVecEnv(2, **env_kwargs)
    a.seed(3)
    b.seed(3)
    np.testing.assert_array_equal(a.reset()["input_ids"], b.reset()["input_ids"])


def test_infos_equal_gymnasium_row_by_row_layout(env_kwargs, tokenizer):
    """The array-built infos equal what Gymnasium's ``_add_info`` gives, one row at a time."""
    from rlhf_gym.envs.text_generation import step_info

    vec = TextGenerationVectorEnv(N, **env_kwargs)
    vec.reset(seed=SEED)
    captured = []
    original = vec.batch.step
    vec.batch.step = lambda *a, **k: captured.append(original(*a, **k)) or captured[-1]
    for actions in action_plan(len(tokenizer), tokenizer.eos_token_id):
        *_, infos = vec.step(actions)
        result, want = captured[-1], {}
        for row in range(N):
            info = step_info(result, row)
            if row in result.finished:
                final = {"final_obs": result.finished[row].final_obs, "final_info": info}
                want = vec._add_info(want, final, row)
            want = vec._add_info(want, info, row)
        assert sorted(infos) == sorted(want)
        for key, value in want.items():
            if key in ("final_obs", "final_info"):
                continue
            assert infos[key].dtype == value.dtype, key
            assert infos[key].tolist() == value.tolist(), key
        for row in result.finished:
            assert infos["final_info"]["completion"][row] == want["final_info"]["completion"][row]

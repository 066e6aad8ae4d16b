"""The env's episode state, as an agent's checkpoint saves it: a new env continues exactly."""

from __future__ import annotations

import numpy as np
import pytest
from rlhf_gym.envs import TextGenerationEnv


def step_both(a, b, rng: np.random.Generator, steps: int) -> None:
    """Step two VecEnvs with the same actions and log-probs; obs and rewards must be equal."""
    for _ in range(steps):
        actions = rng.integers(3, a.action_space.n, size=a.num_envs)
        logprobs = -rng.uniform(0.5, 3.0, size=a.num_envs)
        results = []
        for env in (a, b):
            env.set_policy_logprobs(logprobs)
            results.append(env.step(actions))
        for key in ("input_ids", "attention_mask"):
            np.testing.assert_array_equal(results[0][0][key], results[1][0][key])
        np.testing.assert_array_equal(results[0][1], results[1][1])  # bitwise rewards
        np.testing.assert_array_equal(results[0][2], results[1][2])


def test_a_new_vec_env_continues_the_saved_episodes(env_factory, lm_factory) -> None:
    rng = np.random.default_rng(0)
    original = env_factory(lm_factory("gpt2"), num_envs=5, max_new_tokens=7)
    original.seed(3)
    original.reset()
    for _ in range(9):  # staggered rows, some past a restart
        original.set_policy_logprobs(np.full(5, -1.0))
        original.step(rng.integers(0, original.action_space.n, size=5))
    state = original.get_state()
    state["kl_coef"] = 0.07
    copy = env_factory(lm_factory("gpt2"), num_envs=5, max_new_tokens=7)
    copy.set_state(state)
    original.set_kl_coef(0.07)
    original.rebuild_caches()  # as an agent does at each rollout start
    assert copy.get_kl_coef() == 0.07
    step_both(original, copy, rng, 20)  # restarts draw the same prompts from restored rngs


def test_state_of_another_shape_is_refused(env_factory, lm_factory) -> None:
    env = env_factory(lm_factory("gpt2"), num_envs=2)
    env.reset()
    other = env_factory(lm_factory("gpt2"), num_envs=3)
    with pytest.raises(ValueError, match="same num_envs and token budgets"):
        other.set_state(env.get_state())


def test_the_single_env_keeps_its_generator(env_factory, lm_factory, tokenizer_factory) -> None:
    kwargs = {
        "tokenizer": tokenizer_factory(), "reference_model": lm_factory("gpt2"),
        "prompts": [f"review of the {w} :" for w in ("phone", "lamp", "book")] + ["it is"],
        "kl_coef": 0.0, "max_new_tokens": 3, "device": "cpu",
    }  # fmt: skip
    first, second = TextGenerationEnv(**kwargs), TextGenerationEnv(**kwargs)
    first.reset(seed=5)
    first.step(4)
    second.set_state(first.get_state())
    for _ in range(2):
        assert first.step(5)[1] == second.step(5)[1]
    prompts = [env.reset()[1]["prompt"] for env in (first, second) for _ in range(3)]
    assert prompts[:3] == prompts[3:]  # np_random is the restored generator

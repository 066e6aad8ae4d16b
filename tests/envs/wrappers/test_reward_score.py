from __future__ import annotations

import numpy as np
import pytest
from env_helpers import positive_word_reward
from gymnasium.wrappers import NormalizeReward
from rlhf_gym.envs import TextGenerationEnv
from rlhf_gym.envs.wrappers import RewardScoreWrapper


def play(env, actions):
    env.reset(seed=0)
    rewards = []
    for a in actions:
        _, r, te, tr, info = env.step(a)
        rewards.append(r)
        if te or tr:
            return rewards, info
    raise AssertionError("episode did not end")


def test_wrapped_source_equals_built_in_source(env_kwargs):
    actions = [13, 5, 20, 1]  # "good the . <eos>"
    built_in = TextGenerationEnv(**{**env_kwargs, "missing_eos_penalty": -2.0})
    wrapped = RewardScoreWrapper(
        TextGenerationEnv(**{**env_kwargs, "reward": None, "missing_eos_penalty": -2.0}),
        positive_word_reward,
    )
    want, want_info = play(built_in, actions)
    got, got_info = play(wrapped, actions)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got_info["score"] == want_info["score"] == 1.0
    got, got_info = play(wrapped, [5] * 5)  # truncated: the eos penalty survives replacement
    assert got_info["score"] == -2.0


def test_replace_and_add_modes(env_kwargs):
    def const(p, c):
        return np.full(len(c), 3.0)

    base_rewards, _ = play(TextGenerationEnv(**env_kwargs), [13, 1])
    replaced, info = play(RewardScoreWrapper(TextGenerationEnv(**env_kwargs), const), [13, 1])
    assert info["score"] == 3.0 and replaced[-1] == pytest.approx(base_rewards[-1] + 2.0)
    added, info = play(RewardScoreWrapper(TextGenerationEnv(**env_kwargs), const, "add"), [13, 1])
    assert info["score"] == 4.0 and added[-1] == pytest.approx(base_rewards[-1] + 3.0)


def test_wrapped_source_errors_on_nan(env_kwargs):
    env = RewardScoreWrapper(TextGenerationEnv(**env_kwargs), lambda p, c: [float("nan")])
    with pytest.raises(ValueError, match="non-finite"):
        play(env, [1])


def test_gymnasium_normalize_reward_fits_on_top(env_kwargs):
    env = NormalizeReward(RewardScoreWrapper(TextGenerationEnv(**env_kwargs), positive_word_reward))
    env.reset(seed=0)
    raw_env = TextGenerationEnv(**env_kwargs)
    raw_env.reset(seed=0)
    for _ in range(3):
        _, r, *_ = env.step(5)
        _, raw, *_ = raw_env.step(5)
        assert r != raw and np.sign(r) == np.sign(raw)

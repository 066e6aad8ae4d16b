from __future__ import annotations

import pytest
from rlhf_gym.envs import TextGenerationEnv
from rlhf_gym.envs.wrappers import LengthPenaltyWrapper


def last_step(env, actions):
    env.reset(seed=0)
    for a in actions:
        out = env.step(a)
    return out


def test_subtract_alpha_times_length(env_kwargs):
    kwargs = {**env_kwargs, "kl_coef": 0.0}
    _, r, _, _, info = last_step(LengthPenaltyWrapper(TextGenerationEnv(**kwargs), 0.1), [13, 5, 1])
    assert info["length_penalty"] == pytest.approx(-0.2)  # 2 tokens, EOS excluded
    assert r == pytest.approx(1.0 - 0.2) and info["score"] == pytest.approx(0.8)


def test_divide_score_by_length(env_kwargs):
    env = LengthPenaltyWrapper(TextGenerationEnv(**{**env_kwargs, "kl_coef": 0.0}), mode="divide")
    _, r, _, _, info = last_step(env, [13, 5, 6, 1])
    assert r == pytest.approx(1.0 / 3) and info["score"] == pytest.approx(1.0 / 3)


def test_bad_arguments(env_kwargs):
    with pytest.raises(ValueError, match="mode"):
        LengthPenaltyWrapper(TextGenerationEnv(**env_kwargs), mode="multiply")
    with pytest.raises(ValueError, match="alpha"):
        LengthPenaltyWrapper(TextGenerationEnv(**env_kwargs), alpha=-1.0)

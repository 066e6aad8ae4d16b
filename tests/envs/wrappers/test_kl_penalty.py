from __future__ import annotations

import pytest
from env_helpers import tiny_gpt2
from identity import expected_return
from rlhf_gym.envs import TextGenerationEnv
from rlhf_gym.envs.wrappers import KLPenaltyWrapper


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_wrapper_penalty_matches_base_env_math(env_kwargs, tokenizer, estimator):
    """Base env with β=0 + wrapper == teacher-forced identity with the wrapper's reference."""
    other_ref = tiny_gpt2(len(tokenizer), seed=4)
    env = KLPenaltyWrapper(
        TextGenerationEnv(**{**env_kwargs, "kl_coef": 0.0, "prompts": ["review of the book :"]}),
        other_ref,
        kl_coef=0.2,
        estimator=estimator,
    )
    env.reset(seed=0)
    actions, total = [13, 5, 20, 1], 0.0
    for a in actions:
        _, r, te, tr, info = env.step(a)
        total += r
    assert te and "extra_kl" in info
    prompt = tokenizer("review of the book :").input_ids
    want = expected_return(
        env_kwargs["policy_model"], other_ref, prompt, actions, 1.0, 0.2, estimator=estimator
    )
    assert total == pytest.approx(want, abs=1e-4)


def test_wrapper_needs_a_policy_logprob(env_kwargs, tokenizer):
    env = KLPenaltyWrapper(
        TextGenerationEnv(**{**env_kwargs, "kl_coef": 0.0, "policy_model": None}),
        tiny_gpt2(len(tokenizer), seed=4),
        kl_coef=0.1,
    )
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="set_policy_logprob"):
        env.step(5)
    env.get_wrapper_attr("set_policy_logprob")(-1.0)
    _, r, *_ = env.step(5)
    assert r != 0.0

import json

import numpy as np
import pytest
import torch
from rlhf_gym.evaluation.held_out import EvalResult, evaluate_policy
from rlhf_gym.lm.sampling import completion_logprobs, sample_batch
from rlhf_gym.reward_models.protocol import CallableReward

PROMPTS = ["review of the phone :", "it is", "the cat is very"]


def count_good(prompts, completions):
    return [c.split().count("good") - 0.5 * len(c.split()) for c in completions]


def test_kl_to_itself_is_zero_and_to_another_model_positive(policy, other_model, tokenizer):
    kwargs = dict(num_samples_per_prompt=6, max_new_tokens=8, batch_size=10, device="cpu")
    same = evaluate_policy(policy, tokenizer, PROMPTS, count_good, reference=policy, **kwargs)
    assert same.kl is not None and len(same.kl) == 18
    assert np.max(np.abs(same.kl)) < 1e-5
    other = evaluate_policy(policy, tokenizer, PROMPTS, count_good, reference=other_model, **kwargs)
    assert other.completions == same.completions  # same seed, same samples
    assert other.kl_mean > 0.5  # a peaked policy against a near-uniform reference


def test_reward_and_gold_match_the_sources_on_the_samples(policy, tokenizer):
    reward = CallableReward(count_good)
    result = evaluate_policy(
        policy, tokenizer, PROMPTS, reward, gold=lambda p, c: [len(x) for x in c],
        num_samples_per_prompt=4, max_new_tokens=10, device="cpu",
    )
    assert result.prompts == [p for p in PROMPTS for _ in range(4)]
    np.testing.assert_allclose(result.scores, count_good(result.prompts, result.completions))
    assert result.gold == [float(len(c)) for c in result.completions]
    assert result.kl is None and result.kl_mean is None
    assert result.length == [len(c.split()) for c in result.completions]
    assert all(n <= 10 for n in result.num_tokens)
    # an ended completion's tokens are its words (special tokens decode to nothing) plus EOS
    rows = zip(result.num_tokens, result.length, result.ended, strict=True)
    assert all(n >= w + 1 for n, w, e in rows if e)
    agg = result.aggregates()
    assert agg["reward_mean"] == pytest.approx(np.mean(result.scores))
    text = json.dumps(result.to_dict())
    again = EvalResult.from_dict(json.loads(text))
    assert again.completions == result.completions and again.gold == result.gold
    assert "reward_mean" in result.table() and "n/a" in result.table()


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(policy, tokenizer):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    kwargs = dict(num_samples_per_prompt=2, max_new_tokens=8, device="cpu")
    a = evaluate_policy(policy, tokenizer, PROMPTS, count_good, seed=5, **kwargs)
    assert torch.rand(1) == expected_next
    b = evaluate_policy(policy, tokenizer, PROMPTS, count_good, seed=5, **kwargs)
    c = evaluate_policy(policy, tokenizer, PROMPTS, count_good, seed=6, **kwargs)
    assert a.completions == b.completions
    assert a.completions != c.completions


@torch.no_grad()
def test_teacher_forced_logprobs_match_the_sampling_distribution(policy, tokenizer):
    """Left padding and positions: the KL forward must see what the sampler saw."""
    batch = sample_batch(policy, tokenizer, PROMPTS, max_new_tokens=6, temperature=0.7,
                         generator=torch.Generator().manual_seed(0))
    lp = completion_logprobs(policy, batch, temperature=0.7)
    for row, prompt in enumerate(PROMPTS):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        gen = batch.sequences[row, batch.prompt_length :]
        n = int(batch.completion_mask[row].sum())
        full = torch.cat([ids[0], gen[:n]]).unsqueeze(0)
        logits = policy(full).logits[0, ids.shape[1] - 1 : -1] / 0.7
        want = torch.log_softmax(logits, -1).gather(-1, gen[:n, None]).squeeze(-1)
        torch.testing.assert_close(lp[row, :n], want, atol=1e-5, rtol=1e-5)
        assert torch.all(lp[row, n:] == 0)

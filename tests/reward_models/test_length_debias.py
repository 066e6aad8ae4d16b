import numpy as np
import pytest
from rlhf_gym.reward_models import CallableReward, LengthDebiasedReward


def verbose_reward(prompts, completions):
    """Quality (count of 'good') plus 0.5 per word: a verbosity-biased proxy."""
    return [c.split().count("good") + 0.5 * len(c.split()) for c in completions]


def test_fit_removes_the_length_slope_and_keeps_quality():
    rng = np.random.default_rng(0)
    completions = [
        " ".join(rng.choice(["good", "bad", "ok"], size=int(rng.integers(1, 12))))
        for _ in range(400)
    ]
    prompts = ["p"] * len(completions)
    source = CallableReward(verbose_reward)
    debiased = LengthDebiasedReward.fit(source, prompts, completions)
    # 'good' is a third of the words on average, so the biased slope is about 0.5 + 1/3.
    assert debiased.slope == pytest.approx(0.5 + 1 / 3, abs=0.1)
    padded = debiased.score(["p", "p"], ["good", "good ok ok ok ok ok ok ok ok"])
    assert padded[1] < padded[0]  # padding with filler no longer pays
    raw = source.score(["p", "p"], ["good", "good ok ok ok ok ok ok ok ok"])
    assert raw[1] > raw[0]


def test_fit_needs_varied_lengths():
    with pytest.raises(ValueError, match="same length"):
        LengthDebiasedReward.fit(CallableReward(verbose_reward), ["p", "p"], ["a b", "c d"])


def test_nan_from_the_source_is_a_clear_error():
    debiased = LengthDebiasedReward(CallableReward(lambda p, c: [float("nan")] * len(c)), 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        debiased.score(["p"], ["x"])

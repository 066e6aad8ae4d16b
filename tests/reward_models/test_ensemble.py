import numpy as np
import pytest
from rlhf_gym.reward_models import CallableReward, RewardEnsemble, RewardModel, init_reward_model

PROMPTS = ["the cat", "q", "a dog was"]
COMPLETIONS = ["is good", "say bad very bad", "not great"]


@pytest.fixture(scope="module")
def members(sft_dir, tokenizer):
    return [
        RewardModel(init_reward_model(sft_dir, pad_token_id=2, seed=s), tokenizer) for s in range(3)
    ]


@pytest.mark.parametrize("aggregate", ["mean", "min", "mean_minus_std"])
def test_ensemble_aggregates_members(members, aggregate):
    ensemble = RewardEnsemble(members, aggregate=aggregate, k=2.0)
    each = np.stack([m.score(PROMPTS, COMPLETIONS) for m in members])
    expected = {
        "mean": each.mean(0),
        "min": each.min(0),
        "mean_minus_std": each.mean(0) - 2 * each.std(0),
    }
    assert ensemble.score(PROMPTS, COMPLETIONS) == pytest.approx(expected[aggregate])
    assert each.std(0).min() > 0  # members really differ (different head seeds)


def test_ensemble_saves_loads_and_scores(members, tmp_path):
    ensemble = RewardEnsemble(members, aggregate="mean_minus_std", k=0.5)
    ensemble.save_pretrained(tmp_path)
    loaded = RewardEnsemble.from_pretrained(tmp_path)
    assert (len(loaded.members), loaded.aggregate, loaded.k) == (3, "mean_minus_std", 0.5)
    assert loaded.score(PROMPTS, COMPLETIONS) == pytest.approx(
        ensemble.score(PROMPTS, COMPLETIONS), abs=1e-5
    )


def test_ensemble_mixes_models_and_callables_but_saves_only_models(members, tmp_path):
    mixed = RewardEnsemble([members[0], CallableReward(lambda p, c: [float(len(x)) for x in c])])
    assert mixed.score(PROMPTS, COMPLETIONS).shape == (3,)
    with pytest.raises(TypeError, match="only ensembles of RewardModel"):
        mixed.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="aggregate must be"):
        RewardEnsemble(members, aggregate="median")


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda p, c: [float("nan")] * len(c), "non-finite"),
        (lambda p, c: [1.0, float("inf"), 0.0], "first at index 1: inf"),
        (lambda p, c: [1.0, 2.0], r"shape \(2,\) for 3 completions"),
        (lambda p, c: [[1.0, 2.0, 3.0]], r"shape \(1, 3\)"),
        (lambda p, c: ["a", "b", "c"], "not numbers"),
    ],
)
def test_callable_reward_rejects_bad_output(fn, message):
    with pytest.raises(ValueError, match=message):
        CallableReward(fn, name="bad").score(PROMPTS, COMPLETIONS)


def test_callable_reward_per_pair_and_in_ensemble():
    per_pair = CallableReward(lambda p, c: len(c.split()), batched=False)
    assert per_pair.score(PROMPTS, COMPLETIONS).tolist() == [2.0, 4.0, 2.0]

    class Broken:
        def score(self, prompts, completions):
            return np.ones(1)

    bad_member = RewardEnsemble([CallableReward(lambda p, c: [0.0] * len(c)), Broken()])
    with pytest.raises(ValueError, match=r"member 1 returned shape \(1,\)"):
        bad_member.score(PROMPTS, COMPLETIONS)

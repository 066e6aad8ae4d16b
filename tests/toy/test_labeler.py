import numpy as np
import pytest
from rlhf_gym.toy import SimulatedLabeler, ToyWorld


@pytest.fixture(scope="module")
def pairs():
    world = ToyWorld()
    rng = np.random.default_rng(7)
    items = rng.choice(world.train_items, size=1500)
    return [
        (world.prompt_for(i), world.sample_completion(i, rng), world.sample_completion(i, rng))
        for i in items
    ]


def test_bayes_accuracy_matches_monte_carlo(pairs):
    labeler = SimulatedLabeler(ToyWorld(), seed=0)
    exact = labeler.bayes_accuracy(pairs)
    prompts, first, second = (list(x) for x in zip(*pairs, strict=True))
    # the best possible predictor says "first wins" iff P(first wins) > 1/2
    best_guess = labeler.prob_first_wins(prompts, first, second) > 0.5
    rng = np.random.default_rng(123)
    hits = [np.mean(labeler.label(prompts, first, second, rng) == best_guess) for _ in range(40)]
    monte_carlo = float(np.mean(hits))
    # 60k labels: standard error about 0.002
    assert abs(exact - monte_carlo) < 0.008
    assert 0.6 < exact < 0.95


def test_lower_temperature_means_higher_bayes_accuracy(pairs):
    world = ToyWorld()
    sharp = SimulatedLabeler(world, temperature=0.3).bayes_accuracy(pairs)
    noisy = SimulatedLabeler(world, temperature=2.0).bayes_accuracy(pairs)
    assert sharp > noisy


def test_verbosity_bias_prefers_longer_answers():
    prompt = "review of the phone :"
    short = "the phone is great . it is great ."
    long = short + " its screen is great . its battery is great ."
    biased = SimulatedLabeler(ToyWorld())
    neutral = SimulatedLabeler(ToyWorld(), verbosity_bias=0.0)
    assert biased.verbosity_bias > 0
    assert biased.prob_first_wins([prompt], [long], [short])[0] > 0.5
    assert neutral.prob_first_wins([prompt], [long], [short])[0] < 0.5


def test_position_bias_favours_first():
    prompt, a, b = "review of the phone :", "the phone is good .", "the phone is nice ."
    labeler = SimulatedLabeler(ToyWorld(), position_bias=1.0)
    assert labeler.prob_first_wins([prompt], [a], [b])[0] > 0.7


def test_labels_are_seeded(pairs):
    prompts, first, second = (list(x) for x in zip(*pairs, strict=True))
    a = SimulatedLabeler(ToyWorld(), seed=5).label(prompts, first, second)
    b = SimulatedLabeler(ToyWorld(), seed=5).label(prompts, first, second)
    assert a.dtype == bool and np.array_equal(a, b)


def test_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        SimulatedLabeler(ToyWorld(), temperature=0.0)

import numpy as np
import pytest
from rlhf_gym.reward_models.protocol import RewardSource, check_scores
from rlhf_gym.toy import GoldUtility, ToyWorld, gold_utility, utility_terms
from rlhf_gym.toy.gold import ILL_FORMED

PROMPT = "review of the phone :"


def u(text: str, prompt: str = PROMPT) -> float:
    return gold_utility(prompt, text)


def test_positive_beats_negative():
    assert u("the phone is great .") > u("the phone is bad .")
    assert u("the phone is very great .") > u("the phone is great .")
    assert u("the phone is not bad .") > u("the phone is bad .")


def test_relevant_beats_off_topic():
    assert u("the phone is great .") > u("the kettle is great .")
    assert u("its battery is great .") > u("its blade is great .")
    assert u("the phone is good .") > u("the weather is amazing .")
    assert u("the phone is good . it was a gift .") > u("the phone is good . my dog is nice .")


def test_length_beyond_two_sentences_is_not_rewarded():
    two = "the phone is great . its screen is great ."
    four = two + " its battery is great . it is great ."
    three = two + " its battery is great ."
    assert u(four) < u(two)
    assert u(three) < u(two)
    assert u("the phone is great . it is great .") >= u("the phone is great .")


def test_ill_formed_scores_like_a_poor_review():
    world = ToyWorld()
    prompts, completions = world.sample(4000, np.random.default_rng(4))
    scores = GoldUtility().score(prompts, completions)
    assert u("the the phone is great .") == ILL_FORMED
    assert utility_terms(PROMPT, "phone phone")["well_formed"] == 0.0
    assert np.mean(scores > ILL_FORMED) >= 0.9  # below nearly every review the world writes
    assert scores.min() < ILL_FORMED  # but not below a thoroughly bad one


def test_gold_is_standardised_on_world_data():
    world = ToyWorld()
    prompts, completions = world.sample(4000, np.random.default_rng(3))
    scores = GoldUtility().score(prompts, completions)
    assert abs(scores.mean()) < 0.2
    assert 0.8 < scores.std() < 1.2
    # room for RL: the best completions are far above the data's mean
    assert u("the phone is extremely amazing , and its screen is extremely perfect .") > 2.5


def test_gold_is_a_reward_source():
    gold = GoldUtility()
    assert isinstance(gold, RewardSource)
    scores = gold.score([PROMPT, PROMPT], ["the phone is great .", "it is bad ."])
    check_scores(scores, 2, "gold")
    with pytest.raises(ValueError):
        gold.score([PROMPT], [])

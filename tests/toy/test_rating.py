"""The star rating after each review in the SFT corpus (toy/rating.py)."""

import numpy as np
from rlhf_gym.toy import ToyWorld, gold_utility, is_well_formed
from rlhf_gym.toy.lexicon import RATING_UNIT, RATING_WORDS, vocabulary
from rlhf_gym.toy.rating import review_quality, site_rating
from rlhf_gym.toy.sft import _batches
from rlhf_gym.toy.sft_config import SFTConfig
from rlhf_gym.toy.tokenizer import build_tokenizer

PROMPT = "review of the phone :"


def test_rating_words_are_in_the_vocabulary_but_never_well_formed():
    assert set(RATING_WORDS) | {RATING_UNIT} <= set(vocabulary())
    assert not is_well_formed("the phone is good . <eos> 4 stars")
    assert not is_well_formed("4 stars")


def test_rating_follows_the_quality_gold_weighs():
    world, rng = ToyWorld(), np.random.default_rng(0)
    prompts, reviews = world.sample(3000, rng, world.train_items)
    stars = np.array(
        [int(site_rating(p, r, rng).split()[0]) for p, r in zip(prompts, reviews, strict=True)]
    )
    quality = np.array([review_quality(p, r) for p, r in zip(prompts, reviews, strict=True)])
    gold = np.array([gold_utility(p, r) for p, r in zip(prompts, reviews, strict=True)])
    assert set(stars) == {1, 2, 3, 4, 5}
    assert np.corrcoef(stars, quality)[0, 1] > 0.9
    assert 0.8 < np.corrcoef(stars, gold)[0, 1] < 0.95  # length is left to the preference pairs
    # an on-topic rave beats an off-topic rant, every time
    good = [
        site_rating(PROMPT, "the phone is amazing . its screen is great .", rng) for _ in range(50)
    ]
    bad = [site_rating(PROMPT, "the weather is awful . my dog is bad .", rng) for _ in range(50)]
    assert min(int(g.split()[0]) for g in good) > max(int(b.split()[0]) for b in bad)


def test_rating_is_seeded():
    a = [site_rating(PROMPT, "it is fine .", np.random.default_rng(3)) for _ in range(5)]
    b = [site_rating(PROMPT, "it is fine .", np.random.default_rng(3)) for _ in range(5)]
    assert a == b


def test_sft_batches_teach_the_rating_after_the_eos():
    tokenizer = build_tokenizer()
    batch = next(_batches(ToyWorld(), tokenizer, SFTConfig(batch_size=8), np.random.default_rng(0)))
    eos, unit = tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(RATING_UNIT)
    star_ids = set(tokenizer.convert_tokens_to_ids(list(RATING_WORDS)))
    for ids, labels, mask in zip(
        *(batch[k] for k in ("input_ids", "labels", "attention_mask")), strict=True
    ):
        row = ids[mask.bool()].tolist()
        at = row.index(eos)
        assert row[at + 1] in star_ids and row[at + 2 :] == [unit]
        assert labels[at + 1] == row[at + 1] and labels[at + 2] == unit  # both are trained on

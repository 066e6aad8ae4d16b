import numpy as np
import pytest
from rlhf_gym.toy import ToyWorld, WorldConfig, is_well_formed, parse
from rlhf_gym.toy.lexicon import vocabulary


@pytest.fixture(scope="module")
def samples():
    world = ToyWorld()
    prompts, completions = world.sample(2000, np.random.default_rng(0))
    return world, prompts, completions


def test_vocabulary_size_in_range():
    assert 200 <= len(vocabulary()) <= 500


def test_grammar_samples_are_well_formed(samples):
    world, _, completions = samples
    assert all(world.is_well_formed(c) for c in completions)
    lengths = {world.num_sentences(c) for c in completions}
    assert lengths == {1, 2, 3, 4}


def test_sampling_is_seeded(samples):
    world, prompts, completions = samples
    again = world.sample(2000, np.random.default_rng(0))
    assert again == (prompts, completions)
    assert world.sample(50, np.random.default_rng(1))[1] != completions[:50]


@pytest.mark.parametrize(
    "text",
    [
        "the the phone is good .",
        "the phone is is good .",
        "it is very very good .",
        "it is good good .",
        "it is good",
        "it is good . . ",
        "it is good .  it is bad .",
        " it is good .",
        "the buttons is good .",
        "it are good .",
        "i love love it .",
        "it is good . it is bad . it is fine . it is okay . it is nice .",
        "it is good . it is good . it is good . it is good . it is good .",
        "phone good .",
        "banana is good .",
        "it is not good and nice .",
        "i bought it last week last week .",
        "",
        ".",
    ],
)
def test_rejects_text_the_grammar_cannot_make(text):
    assert not is_well_formed(text)


@pytest.mark.parametrize(
    "text",
    [
        "the phone is great .",
        "its battery is very good , but the screen was not awful !",
        "the buttons are extremely sturdy and nice .",
        "i would not recommend it . it was a gift .",
        "my dog is lovely .",
        "i love its battery . the phone looks okay . it was a gift . it feels cheap .",
    ],
)
def test_accepts_grammar_sentences(text):
    assert is_well_formed(text)


def test_parse_reads_valence_and_subjects():
    sentences = parse("the phone is very good , but its battery is not great .")
    assert sentences is not None and len(sentences) == 1
    first, second = sentences[0].clauses
    assert (first.subject, first.kind, first.valence) == ("phone", "item", 1.5)
    assert (second.subject, second.kind, second.valence) == ("battery", "attribute", -1.0)


def test_train_and_heldout_prompts_split_items():
    world = ToyWorld(WorldConfig(seed=0))
    train, held = set(world.train_prompts), set(world.heldout_prompts)
    assert train.isdisjoint(held)
    assert len(train) + len(held) == len(world.items)
    assert 0.1 <= len(held) / len(world.items) <= 0.3
    assert ToyWorld(WorldConfig(seed=0)).heldout_items == world.heldout_items
    assert ToyWorld(WorldConfig(seed=1)).heldout_items != world.heldout_items
    assert all(world.item_of(p) in world.heldout_items for p in held)


def test_item_of_rejects_foreign_prompts():
    with pytest.raises(ValueError, match="not a toy-world prompt"):
        ToyWorld.item_of("tell me a joke")

"""The toy world's word lists: items, attributes, graded adjectives, intensifiers and fillers.

Everything the grammar can say is listed here, so the vocabulary is fixed by code (no data
files). Each adjective carries an integer valence in ``-3..+3``; intensifiers multiply it and
``not`` flips and halves it. Attributes belong to exactly one category, so "mentions an attribute
of the prompt's item" is well defined.
"""

from __future__ import annotations

# category -> (items, attributes). Names are unique across the whole table.
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (
        ("phone", "laptop", "tablet", "camera", "speaker", "monitor"),
        ("battery", "screen", "sound", "charger", "buttons", "software"),
    ),
    "kitchen": (
        ("blender", "kettle", "toaster", "pan", "knife", "mug"),
        ("lid", "handle", "blade", "cord", "finish", "base"),
    ),
    "clothing": (
        ("jacket", "sweater", "shirt", "scarf", "hat", "boots"),
        ("fabric", "zipper", "collar", "sleeves", "fit", "color"),
    ),
    "furniture": (
        ("chair", "desk", "sofa", "lamp", "shelf", "bed"),
        ("legs", "cushion", "frame", "surface", "drawer", "bulb"),
    ),
    "outdoor": (
        ("tent", "backpack", "bicycle", "flashlight", "cooler", "hammock"),
        ("straps", "pockets", "poles", "wheels", "seams", "rope"),
    ),
    "beauty": (
        ("shampoo", "perfume", "soap", "lotion", "razor", "brush"),
        ("scent", "bottle", "texture", "label", "cap", "bristles"),
    ),
    "tools": (
        ("drill", "hammer", "wrench", "saw", "ladder", "toolbox"),
        ("grip", "motor", "bits", "steps", "latch", "head"),
    ),
    "toys": (
        ("puzzle", "kite", "doll", "robot", "yoyo", "blocks"),
        ("pieces", "string", "paint", "remote", "instructions", "colors"),
    ),
}

#: Attributes (and items) that take plural verbs ("the buttons are ...").
PLURALS: frozenset[str] = frozenset(
    {"buttons", "sleeves", "boots", "legs", "straps", "pockets", "poles", "wheels", "seams",
     "bristles", "bits", "steps", "blocks", "pieces", "instructions", "colors"}
)

#: Adjective -> valence.
ADJECTIVES: dict[str, int] = {
    **dict.fromkeys(("amazing", "excellent", "perfect", "fantastic", "wonderful", "superior"), 3),
    **dict.fromkeys(("great", "lovely", "superb", "impressive", "solid", "sturdy"), 2),
    **dict.fromkeys(("good", "nice", "decent", "fine", "pleasant", "handy"), 1),
    **dict.fromkeys(("okay", "average", "ordinary", "plain", "standard", "normal"), 0),
    **dict.fromkeys(("weak", "dull", "flimsy", "mediocre", "clunky", "noisy"), -1),
    **dict.fromkeys(("bad", "cheap", "annoying", "disappointing", "fragile", "uncomfortable"), -2),
    **dict.fromkeys(("awful", "terrible", "horrible", "useless", "broken", "dreadful"), -3),
}

#: Intensifier -> multiplier applied to the adjective's valence.
INTENSIFIERS: dict[str, float] = {
    "very": 1.5, "really": 1.5, "so": 1.5, "extremely": 1.75,
    "quite": 1.25, "pretty": 1.25, "rather": 1.25,
}

#: ``not ADJ`` has valence ``NEGATION * valence(ADJ)``: "not good" is mildly negative.
NEGATION = -0.5

#: Copulas by number.
COPULAS_SINGULAR: tuple[str, ...] = ("is", "was", "feels", "looks", "seems")
COPULAS_PLURAL: tuple[str, ...] = ("are", "were", "feel", "look", "seem")

#: Off-topic nouns: things a review should not be about.
OFF_TOPIC_NOUNS: tuple[str, ...] = (
    "weather", "traffic", "movie", "coffee", "dog", "cat", "game", "music", "garden",
    "neighbor", "bus", "dinner", "weekend", "city", "beach",
)

#: Opinion verbs ("i love it") -> valence of the sentence.
OPINION_VERBS: dict[str, float] = {
    "love": 2.5, "like": 1.5, "enjoy": 1.5, "dislike": -1.5, "hate": -2.5,
}
#: "i would recommend X" / "i would not recommend X".
RECOMMEND_VALENCE = 2.0

#: Fixed neutral sentences (without the end mark). They carry no sentiment and no relevance.
FILLERS: tuple[str, ...] = (
    "i bought it last week",
    "i got it on sale",
    "it was a gift",
    "it arrived on time",
    "i use it every day",
    "i have had it for a month",
    "my sister has one too",
    "i ordered it online",
    "it came in a small box",
    "i read the manual first",
    "it is my second one",
    "i paid full price",
    "i will keep using it",
    "it does what it says",
    "i use it at home",
    "i bought two of them",
)

#: Sentence end marks and clause joiners.
END_MARKS: tuple[str, ...] = (".", "!")
JOINERS: tuple[str, ...] = ("and", "but")

#: Words of a review's star rating in the corpus (after its EOS): ``<1-5> stars``.
RATING_WORDS: tuple[str, ...] = ("1", "2", "3", "4", "5")
RATING_UNIT = "stars"

#: Special tokens of the tokenizer: pad, end of sequence, unknown word.
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"

#: Words of the prompt template ``review of the <item> :``.
PROMPT_WORDS: tuple[str, ...] = ("review", "of", "the", ":")


def all_items() -> list[str]:
    """Every item, in table order."""
    return [item for items, _ in CATEGORIES.values() for item in items]


def category_of() -> dict[str, str]:
    """Map every item and attribute to its category."""
    table: dict[str, str] = {}
    for name, (items, attrs) in CATEGORIES.items():
        for word in (*items, *attrs):
            table[word] = name
    return table


def vocabulary() -> list[str]:
    """All words the prompts and completions can use, sorted, without special tokens."""
    words: set[str] = set(PROMPT_WORDS)
    for items, attrs in CATEGORIES.values():
        words.update(items, attrs)
    words.update(ADJECTIVES, INTENSIFIERS, COPULAS_SINGULAR, COPULAS_PLURAL, OFF_TOPIC_NOUNS)
    words.update(OPINION_VERBS, END_MARKS, JOINERS)
    words.update(("the", "its", "it", "my", "not", "i", "would", "recommend", ","))
    words.update((*RATING_WORDS, RATING_UNIT))
    for sentence in FILLERS:
        words.update(sentence.split())
    return sorted(words)

"""An exact parser for the toy review grammar, and ``is_well_formed`` built on it.

The grammar, with ``[x]`` optional and ``|`` alternatives::

    completion := sentence{1..4}
    sentence   := (filler | opinion | statement) END
    END        := "." | "!"
    filler     := one of lexicon.FILLERS
    opinion    := "i" (VERB | "would" ["not"] "recommend") subject
    statement  := clause ["," ("and" | "but") clause]
    clause     := subject COPULA ("not" adjp | adjp ["and" adjp])
    adjp       := [INTENSIFIER] ADJECTIVE
    subject    := "it" | "the" (ITEM | ATTRIBUTE | NOUN) | "its" ATTRIBUTE | "my" NOUN

The copula agrees in number with the subject ("the buttons are", "it is"). A sentence may repeat
an earlier one (the sampler avoids it; the gold utility does not reward it, since sentiment is a
mean over sentences and length beyond two sentences costs). Words are separated
by single spaces, punctuation is its own word. Any other text (stutters like "the the", "very
very good", missing end marks, unknown words, a fifth sentence) is not well formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rlhf_gym.toy import lexicon as lx

_ITEMS = frozenset(lx.all_items())
_ATTRIBUTES = frozenset(a for _, attrs in lx.CATEGORIES.values() for a in attrs)
_NOUNS = frozenset(lx.OFF_TOPIC_NOUNS)
_FILLERS = frozenset(tuple(f.split()) for f in lx.FILLERS)
_VOCAB = frozenset(lx.vocabulary())
MAX_SENTENCES = 4


@dataclass(frozen=True)
class Clause:
    """What one clause says about one thing.

    Attributes:
        subject: the noun talked about (an item, attribute or off-topic noun), or ``"it"``.
        kind: ``"pronoun"``, ``"item"``, ``"attribute"`` or ``"noun"``.
        valence: signed sentiment of the clause (adjective valence times modifiers).
    """

    subject: str
    kind: str
    valence: float


@dataclass(frozen=True)
class Sentence:
    """One parsed sentence.

    Attributes:
        kind: ``"filler"``, ``"opinion"`` or ``"statement"``.
        clauses: the clauses (empty for fillers; one for opinions; one or two for statements).
        words: the sentence's words without its end mark.
    """

    kind: str
    clauses: tuple[Clause, ...]
    words: tuple[str, ...]


def _subject(words: tuple[str, ...], i: int) -> tuple[Clause, bool, int] | None:
    """Parse a subject at ``words[i]``; return (clause stub, plural, next index)."""
    if i < len(words) and words[i] == "it":
        return Clause("it", "pronoun", 0.0), False, i + 1
    if i + 1 >= len(words):
        return None
    det, noun = words[i], words[i + 1]
    if det == "the" and noun in _ITEMS:
        kind = "item"
    elif det in ("the", "its") and noun in _ATTRIBUTES:
        kind = "attribute"
    elif det in ("the", "my") and noun in _NOUNS:
        kind = "noun"
    else:
        return None
    return Clause(noun, kind, 0.0), noun in lx.PLURALS, i + 2


def _adjp(words: tuple[str, ...], i: int) -> tuple[float, int] | None:
    """Parse ``[INTENSIFIER] ADJECTIVE``; return (valence, next index)."""
    scale = 1.0
    if i < len(words) and words[i] in lx.INTENSIFIERS:
        scale, i = lx.INTENSIFIERS[words[i]], i + 1
    if i < len(words) and words[i] in lx.ADJECTIVES:
        return scale * lx.ADJECTIVES[words[i]], i + 1
    return None


def _clause(words: tuple[str, ...], i: int) -> tuple[Clause, int] | None:
    """Parse ``subject COPULA ("not" adjp | adjp ["and" adjp])``."""
    parsed = _subject(words, i)
    if parsed is None:
        return None
    stub, plural, i = parsed
    copulas = lx.COPULAS_PLURAL if plural else lx.COPULAS_SINGULAR
    if i >= len(words) or words[i] not in copulas:
        return None
    i += 1
    if i < len(words) and words[i] == "not":
        adj = _adjp(words, i + 1)
        if adj is None:
            return None
        return Clause(stub.subject, stub.kind, lx.NEGATION * adj[0]), adj[1]
    adj = _adjp(words, i)
    if adj is None:
        return None
    valence, i = adj
    if i < len(words) and words[i] == "and":
        second = _adjp(words, i + 1)
        if second is None:
            return None
        valence, i = (valence + second[0]) / 2.0, second[1]
    return Clause(stub.subject, stub.kind, valence), i


def _opinion(words: tuple[str, ...]) -> Sentence | None:
    """Parse ``"i" (VERB | "would" ["not"] "recommend") subject``."""
    if len(words) < 3 or words[0] != "i":
        return None
    if words[1] in lx.OPINION_VERBS:
        valence, i = lx.OPINION_VERBS[words[1]], 2
    elif words[1:3] == ("would", "recommend"):
        valence, i = lx.RECOMMEND_VALENCE, 3
    elif words[1:4] == ("would", "not", "recommend"):
        valence, i = -lx.RECOMMEND_VALENCE, 4
    else:
        return None
    parsed = _subject(words, i)
    if parsed is None or parsed[2] != len(words):
        return None
    stub = parsed[0]
    return Sentence("opinion", (Clause(stub.subject, stub.kind, valence),), words)


def _statement(words: tuple[str, ...]) -> Sentence | None:
    """Parse ``clause ["," ("and" | "but") clause]``, consuming every word."""
    first = _clause(words, 0)
    if first is None:
        return None
    clause, i = first
    if i == len(words):
        return Sentence("statement", (clause,), words)
    if words[i : i + 1] != (",",) or i + 1 >= len(words) or words[i + 1] not in lx.JOINERS:
        return None
    second = _clause(words, i + 2)
    if second is None or second[1] != len(words):
        return None
    return Sentence("statement", (clause, second[0]), words)


def parse_sentence(words: tuple[str, ...]) -> Sentence | None:
    """Parse one sentence given without its end mark; ``None`` if the grammar cannot make it."""
    if words in _FILLERS:
        return Sentence("filler", (), words)
    if words[:1] == ("i",):
        return _opinion(words)
    return _statement(words)


@lru_cache(maxsize=65536)
def parse(completion: str) -> tuple[Sentence, ...] | None:
    """Parse a completion into sentences, or return ``None`` when it is not well formed.

    Args:
        completion: the completion text, without the prompt and without ``<eos>``.

    Returns:
        The sentences in order, or ``None`` for text the grammar cannot produce.
    """
    words = completion.split(" ")
    if not completion or any(w not in _VOCAB for w in words) or words[-1] not in lx.END_MARKS:
        return None
    sentences: list[Sentence] = []
    start = 0
    for i, word in enumerate(words):
        if word in lx.END_MARKS:
            sentence = parse_sentence(tuple(words[start:i]))
            if sentence is None:
                return None
            sentences.append(sentence)
            start = i + 1
    if len(sentences) > MAX_SENTENCES:
        return None
    return tuple(sentences)


def is_well_formed(completion: str) -> bool:
    """True when the grammar can produce ``completion`` exactly (see the module docstring)."""
    return parse(completion) is not None

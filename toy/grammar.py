"""The toy world: prompts ``review of the <item> :`` and a seeded generator of short reviews.

:class:`ToyWorld` samples completions from the grammar documented in
:mod:`rlhf_gym.toy.parse`. The data distribution is deliberately mixed so a policy trained on it
leaves room for RL: each review draws a *mood* (negative to positive), 1-4 sentences, and each
sentence is about the item, one of its attributes, a neutral filler, or something off-topic
(the weather, the traffic, my dog...). The parser and the gold utility also know reviews that
wander to other items or other categories' attributes; the world's own reviewers never do.

Train and held-out prompts split the items: a seeded ``heldout_fraction`` of the items of every
category is held out (at least one per category), so held-out prompts name items no preference
pair and no RL training prompt mentions. The SFT policy is trained on all items, like a
pretrained model that has seen every word.

Example:
    >>> world = ToyWorld(WorldConfig(seed=0))
    >>> prompts, completions = world.sample(3, np_rng(0))
    >>> all(world.is_well_formed(c) for c in completions)
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from rlhf_gym.toy import lexicon as lx
from rlhf_gym.toy.parse import MAX_SENTENCES, Sentence, is_well_formed, parse

PROMPT_TEMPLATE = "review of the {item} :"
_ADJ_BY_VALENCE: dict[int, list[str]] = {}
for _adj, _val in lx.ADJECTIVES.items():
    _ADJ_BY_VALENCE.setdefault(_val, []).append(_adj)


_INTENSIFIERS = list(lx.INTENSIFIERS)


def _pick(rng: np.random.Generator, seq: list[str] | tuple[str, ...]) -> str:
    """A uniform draw from ``seq`` (faster than ``rng.choice`` on Python lists)."""
    return seq[int(rng.random() * len(seq))]


def np_rng(seed: int) -> np.random.Generator:
    """A seeded numpy Generator (the only source of randomness in the toy world)."""
    return np.random.default_rng(seed)


@dataclass(frozen=True)
class WorldConfig:
    """What defines a toy world; it is hashed into the cache folder name."""

    seed: int = field(default=0, metadata={"help": "seed of the held-out split and all sampling"})
    heldout_fraction: float = field(default=0.2, metadata={"help": "fraction of items held out"})
    sentence_probs: tuple[float, ...] = field(
        default=(0.3, 0.35, 0.2, 0.15), metadata={"help": "P(1..4 sentences) in the data"}
    )
    mood_std: float = field(default=1.4, metadata={"help": "std of a review's mood (valence)"})
    mood_mean: float = field(default=0.3, metadata={"help": "mean of a review's mood"})
    p_filler: float = field(default=0.15, metadata={"help": "P(a sentence is a neutral filler)"})
    p_off_topic: float = field(default=0.18, metadata={"help": "P(a sentence is off-topic)"})
    p_opinion: float = field(default=0.12, metadata={"help": "P(a sentence is 'i love it')"})

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class ToyWorld:
    """The review language: prompts, a seeded sampler, the parser and the train/held-out split.

    Args:
        config: the world's configuration; defaults to ``WorldConfig()``.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.category_of = lx.category_of()
        self.items: list[str] = lx.all_items()
        split_rng = np_rng(self.config.seed)
        heldout: list[str] = []
        for items, _ in lx.CATEGORIES.values():
            k = max(1, round(self.config.heldout_fraction * len(items)))
            heldout.extend(split_rng.choice(list(items), size=k, replace=False).tolist())
        self.heldout_items: list[str] = [i for i in self.items if i in set(heldout)]
        self.train_items: list[str] = [i for i in self.items if i not in set(heldout)]

    # -- prompts -------------------------------------------------------------------------------
    @staticmethod
    def prompt_for(item: str) -> str:
        """The prompt asking for a review of ``item``."""
        return PROMPT_TEMPLATE.format(item=item)

    @staticmethod
    def item_of(prompt: str) -> str:
        """The item a prompt asks about (inverse of :meth:`prompt_for`)."""
        words = prompt.split()
        if len(words) != 5 or words[:3] != ["review", "of", "the"] or words[4] != ":":
            raise ValueError(f"not a toy-world prompt: {prompt!r}; expected 'review of the X :'")
        return words[3]

    @property
    def train_prompts(self) -> list[str]:
        """Prompts for preference data and RL training (items not held out)."""
        return [self.prompt_for(i) for i in self.train_items]

    @property
    def heldout_prompts(self) -> list[str]:
        """Prompts of the held-out items, for evaluation only."""
        return [self.prompt_for(i) for i in self.heldout_items]

    @property
    def vocabulary(self) -> list[str]:
        """Every word of prompts and completions (no special tokens)."""
        return lx.vocabulary()

    # -- parsing -------------------------------------------------------------------------------
    @staticmethod
    def parse(completion: str) -> tuple[Sentence, ...] | None:
        """Parse a completion; ``None`` when it is not well formed."""
        return parse(completion)

    @staticmethod
    def is_well_formed(completion: str) -> bool:
        """True when the grammar can produce ``completion`` exactly."""
        return is_well_formed(completion)

    @staticmethod
    def num_sentences(completion: str) -> int:
        """Number of end marks ("." or "!") in the completion: its length in sentences."""
        return sum(w in lx.END_MARKS for w in completion.split())

    # -- sampling ------------------------------------------------------------------------------
    def _adjp(self, target: float, rng: np.random.Generator) -> list[str]:
        valence = max(-3, min(3, round(rng.normal(target, 1.0))))
        words = [_pick(rng, _ADJ_BY_VALENCE[valence])]
        if rng.random() < 0.3:
            words.insert(0, _pick(rng, _INTENSIFIERS))
        return words

    def _subject(self, item: str, off_topic: bool, rng: np.random.Generator) -> list[str]:
        category = self.category_of[item]
        if off_topic:
            return [_pick(rng, ("the", "my")), _pick(rng, lx.OFF_TOPIC_NOUNS)]
        r = rng.random()
        if r < 0.4:
            return ["the", item]
        if r < 0.7:
            return ["it"]
        return [_pick(rng, ("the", "its")), _pick(rng, lx.CATEGORIES[category][1])]

    def _clause(
        self, item: str, mood: float, off_topic: bool, rng: np.random.Generator
    ) -> list[str]:
        subject = self._subject(item, off_topic, rng)
        plural = subject[-1] in lx.PLURALS
        words = [*subject, _pick(rng, lx.COPULAS_PLURAL if plural else lx.COPULAS_SINGULAR)]
        r = rng.random()
        if r < 0.1:
            return [*words, "not", *self._adjp(-mood, rng)]
        words += self._adjp(mood, rng)
        if r > 0.85:
            words += ["and", *self._adjp(mood, rng)]
        return words

    def _sentence(self, item: str, mood: float, rng: np.random.Generator) -> list[str]:
        c = self.config
        r = rng.random()
        if r < c.p_filler:
            return _pick(rng, lx.FILLERS).split()
        off_topic = r < c.p_filler + c.p_off_topic
        if rng.random() < c.p_opinion:
            if mood > 0.5 and rng.random() < 0.7:
                verb = _pick(rng, ["love", "like", "enjoy"]).split()
            elif mood < -0.5 and rng.random() < 0.7:
                verb = _pick(rng, ["hate", "dislike", "would not recommend"]).split()
            else:
                verb = _pick(rng, [*lx.OPINION_VERBS, "would recommend"]).split()
            return ["i", *verb, *self._subject(item, off_topic, rng)]
        words = self._clause(item, mood, off_topic, rng)
        if rng.random() < 0.15:
            second_off = rng.random() < c.p_off_topic
            words += [",", _pick(rng, lx.JOINERS), *self._clause(item, mood, second_off, rng)]
        return words

    def sample_completion(self, item: str, rng: np.random.Generator) -> str:
        """One review of ``item`` from the world's data distribution (always well formed)."""
        c = self.config
        u, n = rng.random() * sum(c.sentence_probs), 1
        while n < MAX_SENTENCES and u >= sum(c.sentence_probs[:n]):
            n += 1
        mood = rng.normal(c.mood_mean, c.mood_std)
        sentences: list[list[str]] = []
        while len(sentences) < n:
            words = self._sentence(item, mood, rng)
            if words not in sentences:
                sentences.append(words)
        return " ".join(" ".join([*s, "." if rng.random() < 0.85 else "!"]) for s in sentences)

    def sample(
        self, n: int, rng: np.random.Generator, items: list[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """Sample ``n`` (prompt, completion) pairs, items drawn uniformly from ``items``.

        Args:
            n: number of pairs.
            rng: the numpy Generator to draw from.
            items: items to review; defaults to all items.

        Returns:
            ``(prompts, completions)``, two lists of length ``n``.
        """
        pool = items if items is not None else self.items
        chosen = rng.choice(pool, size=n)
        completions = [self.sample_completion(str(item), rng) for item in chosen]
        return [self.prompt_for(str(item)) for item in chosen], completions

"""The gold ("true human") utility of the toy world, and a reward source built on it.

``u(prompt, completion)`` is a fixed function of the parse (see :mod:`rlhf_gym.toy.parse`)::

    raw = W_SENTIMENT * sentiment + W_MENTION * mentions_item - W_OFF_TOPIC * off_topic_frac
          + LENGTH_TERM[num_sentences]
    u   = (raw - CENTER) / SCALE            for well-formed text
    u   = ILL_FORMED                        otherwise

- *sentiment*: mean over sentences of the sentence's valence (mean over its on-topic clauses;
  fillers and off-topic clauses count 0). Positive is better.
- *mentions_item*: 1 when some clause names the prompt's item or an attribute of its category
  ("the phone", "its battery"); "it" alone does not count.
- *off_topic_frac*: fraction of sentences with a clause about something else (another item, an
  attribute of another category, the weather).
- *length*: 2 sentences is best; 1 costs a little, 3 and 4 cost more, so length beyond about 2
  sentences is never rewarded.

``CENTER`` and ``SCALE`` make ``u`` about mean 0, std 1 on the world's data distribution (and so
on the SFT policy's samples). ``ILL_FORMED`` scores a grammar slip like a poor review, about
2 standard deviations under the mean and below 90% of the world's reviews, not below all of them:
the slips the SFT policy makes are single wrong words that a 0.84M-parameter model reading the
review cannot see, and at -4 they outweighed everything else a reviewer does
(docs/toy_world.md says what was measured).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rlhf_gym.toy import lexicon as lx
from rlhf_gym.toy.grammar import ToyWorld
from rlhf_gym.toy.parse import Clause, parse

W_SENTIMENT = 0.5
W_MENTION = 1.0
W_OFF_TOPIC = 1.5
LENGTH_TERM: dict[int, float] = {1: -0.3, 2: 0.0, 3: -0.3, 4: -0.6}
CENTER = 0.3
SCALE = 1.0
ILL_FORMED = -2.0

_CATEGORY = lx.category_of()
_ATTRS = {cat: frozenset(attrs) for cat, (_, attrs) in lx.CATEGORIES.items()}


def _relation(clause: Clause, item: str) -> str:
    """``"mention"``, ``"pronoun"`` or ``"off"``: how a clause relates to the prompt's item."""
    if clause.kind == "pronoun":
        return "pronoun"
    if clause.subject == item or clause.subject in _ATTRS[_CATEGORY[item]]:
        return "mention"
    return "off"


def utility_terms(prompt: str, completion: str) -> dict[str, float]:
    """The gold utility and its terms for one pair.

    Returns:
        A dict with ``u``, ``well_formed`` (0/1), ``sentiment``, ``mention``, ``off_topic`` and
        ``length`` (the length term) and ``num_sentences``.
    """
    item = ToyWorld.item_of(prompt)
    sentences = parse(completion)
    if sentences is None:
        return {"u": ILL_FORMED, "well_formed": 0.0, "sentiment": 0.0, "mention": 0.0,
                "off_topic": 0.0, "length": 0.0, "num_sentences": 0.0}
    valences, mention, off = [], 0.0, 0
    for sentence in sentences:
        relations = [_relation(c, item) for c in sentence.clauses]
        pairs = zip(sentence.clauses, relations, strict=True)
        on_topic = [c.valence for c, r in pairs if r != "off"]
        valences.append(float(np.mean(on_topic)) if on_topic else 0.0)
        mention = max(mention, float("mention" in relations))
        off += "off" in relations
    n = len(sentences)
    terms = {
        "sentiment": float(np.mean(valences)),
        "mention": mention,
        "off_topic": off / n,
        "length": LENGTH_TERM[n],
    }
    raw = (W_SENTIMENT * terms["sentiment"] + W_MENTION * terms["mention"]
           - W_OFF_TOPIC * terms["off_topic"] + terms["length"])
    return {"u": (raw - CENTER) / SCALE, "well_formed": 1.0, **terms, "num_sentences": float(n)}


def gold_utility(prompt: str, completion: str) -> float:
    """The gold utility ``u(prompt, completion)`` (see the module docstring)."""
    return utility_terms(prompt, completion)["u"]


class GoldUtility:
    """The gold utility as a reward source: ``score(prompts, completions) -> np.ndarray``.

    It satisfies :class:`rlhf_gym.reward_models.protocol.RewardSource`, so it can stand in for a
    reward model (an oracle run) or evaluate a policy.

    Example:
        >>> gold = GoldUtility()
        >>> s = gold.score(["review of the phone :"] * 2, ["the phone is great .", "it is bad ."])
        >>> bool(s[0] > s[1])
        True
    """

    name = "toy-gold"

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """One gold utility per pair, as a float64 array of shape ``(len(prompts),)``."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        return np.array([gold_utility(p, c) for p, c in zip(prompts, completions, strict=True)],
                        dtype=np.float64)

    def is_well_formed(self, completions: Sequence[str]) -> np.ndarray:
        """Boolean array: which completions the grammar can produce."""
        return np.array([parse(c) is not None for c in completions], dtype=bool)

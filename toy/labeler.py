"""A simulated human labeler: Bradley-Terry on the gold utility, plus a verbosity bias.

For completions ``a`` (shown first) and ``b`` of the same prompt, the labeler prefers ``a`` with

    P(a wins) = sigmoid((u_a - u_b + verbosity_bias * (len_a - len_b) + position_bias) / tau)

with ``tau`` the temperature, ``u`` the gold utility (:mod:`rlhf_gym.toy.gold`) and *length
counted in sentences* (end marks "." and "!"). A positive ``verbosity_bias`` makes the labeler
like longer answers more than the gold utility does, so a reward model fit to its labels learns a
length preference that the gold utility does not share, and RL against it can be over-optimised
(Gao et al., 2022).
``position_bias > 0`` favours whichever completion is shown first.

The best any predictor can do on these labels is the Bayes rate
``E[max(sigmoid(D), 1 - sigmoid(D))]`` over the pairs' preference logits ``D``:
:meth:`SimulatedLabeler.bayes_accuracy` computes it exactly for a given set of pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rlhf_gym.toy.gold import GoldUtility
from rlhf_gym.toy.grammar import ToyWorld

#: A labelling query: (prompt, completion shown first, completion shown second).
Pair = tuple[str, str, str]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.exp(-np.logaddexp(0.0, -x))


class SimulatedLabeler:
    """Picks the preferred of two completions, noisily and with known biases.

    Args:
        world: the toy world (for sentence counting); a default world when ``None``.
        temperature: Bradley-Terry temperature ``tau`` in gold-utility units; lower is less noisy.
        verbosity_bias: extra preference per sentence of length difference (in gold units).
        position_bias: extra logit for the completion shown first.
        seed: seed of the labeler's own numpy Generator (used when ``label`` gets no ``rng``).
    """

    def __init__(
        self,
        world: ToyWorld | None = None,
        *,
        temperature: float = 0.7,
        verbosity_bias: float = 0.5,
        position_bias: float = 0.0,
        seed: int = 0,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.world = world or ToyWorld()
        self.temperature = float(temperature)
        self.verbosity_bias = float(verbosity_bias)
        self.position_bias = float(position_bias)
        self.gold = GoldUtility()
        self.rng = np.random.default_rng(seed)

    def logits(
        self, prompts: Sequence[str], first: Sequence[str], second: Sequence[str]
    ) -> np.ndarray:
        """Preference logits ``D`` with ``P(first wins) = sigmoid(D)``, one per pair."""
        u_a = self.gold.score(prompts, first)
        u_b = self.gold.score(prompts, second)
        len_a = np.array([self.world.num_sentences(c) for c in first], dtype=np.float64)
        len_b = np.array([self.world.num_sentences(c) for c in second], dtype=np.float64)
        gap = u_a - u_b + self.verbosity_bias * (len_a - len_b) + self.position_bias
        return gap / self.temperature

    def prob_first_wins(
        self, prompts: Sequence[str], first: Sequence[str], second: Sequence[str]
    ) -> np.ndarray:
        """``P(first wins)`` for each pair."""
        return sigmoid(self.logits(prompts, first, second))

    def label(
        self,
        prompts: Sequence[str],
        first: Sequence[str],
        second: Sequence[str],
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Sample labels: a boolean array, True where ``first`` wins.

        Args:
            prompts: the prompts.
            first: completions shown first.
            second: completions shown second.
            rng: numpy Generator to draw from; the labeler's own seeded one when ``None``.
        """
        p = self.prob_first_wins(prompts, first, second)
        return (rng or self.rng).random(p.shape) < p

    def bayes_accuracy(self, pairs: Sequence[Pair]) -> float:
        """Exact Bayes-optimal accuracy ``mean(max(sigmoid(D), 1 - sigmoid(D)))`` over ``pairs``.

        Args:
            pairs: ``(prompt, first, second)`` triples.
        """
        if not pairs:
            raise ValueError("bayes_accuracy needs at least one pair")
        prompts, first, second = (list(x) for x in zip(*pairs, strict=True))
        p = self.prob_first_wins(prompts, first, second)
        return float(np.mean(np.maximum(p, 1.0 - p)))

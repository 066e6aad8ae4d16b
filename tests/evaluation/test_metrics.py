import math
from itertools import combinations

import numpy as np
import pytest
from rlhf_gym.evaluation.metrics import (
    average_ranks,
    distinct_n,
    jaccard,
    self_similarity,
    spearman,
    word_lengths,
)


def pairwise_mean_jaccard(texts: list[str]) -> float:
    """The slow definition self_similarity must agree with."""
    pairs = list(combinations(texts, 2))
    return float(np.mean([jaccard(a, b) for a, b in pairs])) if pairs else 0.0


def test_distinct_n_counts_unique_over_total_pooled_ngrams():
    texts = ["a b c", "a b d"]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)  # ab, bc, ab, bd
    assert distinct_n(["x y z"], 3) == 1.0
    assert distinct_n(["same words"] * 10, 2) == pytest.approx(0.1)
    assert distinct_n(["", "one"], 2) == 0.0  # no bigram at all


def test_self_similarity_is_mean_pairwise_jaccard():
    assert self_similarity(["the cat sat"] * 5) == 1.0
    assert self_similarity(["a b", "c d"]) == 0.0
    # {a, b, ab} vs {a, c, ac}: 1 shared of 5
    assert jaccard("a b", "a c") == pytest.approx(1 / 5)
    texts = ["the cat sat", "the dog sat", "a bird flew", "the cat ran", ""]
    assert self_similarity(texts) == pytest.approx(pairwise_mean_jaccard(texts))
    assert self_similarity(["only one"]) == 0.0
    assert self_similarity(["", ""]) == 1.0


def test_self_similarity_subsamples_large_sets_deterministically():
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(list("abcdefgh"), size=6)) for _ in range(300)]
    a = self_similarity(texts, max_samples=64, seed=1)
    assert a == self_similarity(texts, max_samples=64, seed=1)
    assert a == pytest.approx(self_similarity(texts), abs=0.05)


def test_word_lengths_count_whitespace_words():
    assert word_lengths(["a b c", "d", "", "  e   f "]).tolist() == [3, 1, 0, 2]


def test_spearman_with_ties_uses_average_ranks():
    assert average_ranks([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert spearman([1, 2, 3, 4], [5, 6, 7, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [10, 20, 15]) == pytest.approx(0.5)
    # ties: ranks x=[1,2.5,2.5,4], y=[1,2,3,4] -> pearson = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])

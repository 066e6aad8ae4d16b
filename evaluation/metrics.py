"""Text and rank metrics for evaluating samples: diversity, length and rank correlation.

Texts are split on whitespace (``str.split``); no lower-casing or punctuation handling, so the
numbers mean the same thing for any tokenizer. All functions take a *set of samples* (for
example every completion of one rollout or one evaluation), because mode collapse shows as
samples becoming alike across prompts, not as repetition inside one sample.

Example:
    >>> distinct_n(["a b c", "a b d"], 1)
    0.6666666666666666
    >>> self_similarity(["a b", "a b"])
    1.0
    >>> spearman([1, 2, 3], [10, 20, 15])
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """The whitespace-word n-grams of one text, in order (empty if it has fewer than n words)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    words = text.split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams / total n-grams, pooled over all texts.

    1.0 means no n-gram repeats anywhere in the set; it falls towards 0 as samples repeat
    themselves or each other. Pooled over more text the value is lower, so compare values
    computed on sets of similar size. Returns 0.0 when the set has no n-gram at all.
    """
    pooled = [g for text in texts for g in ngrams(text, n)]
    if not pooled:
        return 0.0
    return len(set(pooled)) / len(pooled)


def _ngram_set(text: str, max_n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(g for n in range(1, max_n + 1) for g in ngrams(text, n))


def self_similarity(
    texts: Sequence[str], max_n: int = 2, max_samples: int = 256, seed: int = 0
) -> float:
    """Mean pairwise n-gram Jaccard similarity between samples (0 = disjoint, 1 = identical).

    Each text becomes the *set* of its 1- to ``max_n``-grams; two texts' similarity is
    ``|A ∩ B| / |A ∪ B|`` (two empty texts count as identical, 1.0), and the result is the mean
    over all unordered pairs. Like self-BLEU, it rises towards 1 when every prompt gets the same
    answer, but it is symmetric and needs no smoothing. Sets above ``max_samples`` texts are
    subsampled (seeded) to keep the cost of the pairs bounded.

    Returns:
        The mean similarity; 0.0 for fewer than two texts.
    """
    if len(texts) < 2:
        return 0.0
    if len(texts) > max_samples:
        picked = np.random.default_rng(seed).choice(len(texts), size=max_samples, replace=False)
        texts = [texts[int(i)] for i in picked]
    sets = [_ngram_set(t, max_n) for t in texts]
    vocab = {g: j for j, g in enumerate(set().union(*sets))}
    if not vocab:
        return 1.0
    features = np.zeros((len(sets), len(vocab)), dtype=np.float32)
    for i, s in enumerate(sets):
        features[i, [vocab[g] for g in s]] = 1.0
    inter = features @ features.T
    sizes = features.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    sim = np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)
    rows, cols = np.triu_indices(len(sets), k=1)
    return float(sim[rows, cols].mean())


def jaccard(a: str, b: str, max_n: int = 2) -> float:
    """The pairwise similarity :func:`self_similarity` averages (1.0 for two empty texts)."""
    sa, sb = _ngram_set(a, max_n), _ngram_set(b, max_n)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0


def word_lengths(texts: Sequence[str]) -> np.ndarray:
    """Number of whitespace words of each text, as an int array."""
    return np.array([len(t.split()) for t in texts], dtype=np.int64)


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..N, with tied values sharing the average of the ranks they span."""
    array = np.asarray(values, dtype=np.float64)
    _, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts  # 0-based rank where each distinct value starts
    return (starts + (counts + 1) / 2.0)[inverse]


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks, so ties are handled).

    Returns:
        A value in [-1, 1], or NaN when either input is constant or shorter than 2.

    Raises:
        ValueError: when x and y differ in length.
    """
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.shape != ry.shape:
        raise ValueError(f"spearman needs equally long inputs, got {rx.shape} and {ry.shape}.")
    if len(rx) < 2:
        return float("nan")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")

"""Small statistics for reward models: rank correlation and score normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    unique, inverse = np.unique(values, return_inverse=True)
    if len(unique) < len(values):
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / np.bincount(inverse))[inverse]
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (ties averaged); NaN when either input is constant.

    >>> round(spearman([1, 2, 3, 4], [10, 20, 30, 25]), 2)
    0.8
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"spearman needs two 1-d arrays of equal length >= 2, got {a.shape} and {b.shape}."
        )
    ra, rb = _ranks(a) - (len(a) - 1) / 2, _ranks(b) - (len(b) - 1) / 2
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def normalisation(raw_scores: Sequence[float]) -> tuple[float, float]:
    """Gain and bias that map ``raw_scores`` to mean 0 and std 1: ``gain * raw + bias``.

    Raises:
        ValueError: when the scores are constant (nothing to normalise by).
    """
    raw = np.asarray(raw_scores, dtype=np.float64)
    std = raw.std()
    if len(raw) < 2 or not np.isfinite(std) or std <= 0:
        raise ValueError("normalisation needs at least 2 finite, non-constant scores.")
    return float(1.0 / std), float(-raw.mean() / std)

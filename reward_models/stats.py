"""Score normalisation for reward models: gain and bias to mean 0, std 1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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

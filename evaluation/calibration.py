"""Calibration of a Bradley–Terry reward model on held-out preference pairs.

The model's probability that the chosen completion wins is ``p = σ(r(x, y_w) − r(x, y_l))``
(raw rewards: before normalisation, whose gain would rescale it). Each pair counts in both
orders, (p, won) and (1 − p, lost), so a perfectly calibrated model has, in every bin of p, an
observed win rate equal to the bin's mean p. ECE is the count-weighted mean gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pair_calibration(margins: Sequence[float], num_bins: int = 10) -> dict[str, Any]:
    """Reliability bins and ECE from ``r_w − r_l`` of held-out pairs.

    Returns:
        ``{"bins": [{"p": mean predicted, "win_rate": observed, "count": n}, ...],
        "ece": expected calibration error, "accuracy": share of pairs with p > 0.5}``.
    """
    margin = np.asarray(margins, dtype=np.float64)
    if margin.size == 0:
        raise ValueError("calibration needs at least one held-out pair.")
    p = 1.0 / (1.0 + np.exp(-margin))
    predicted = np.concatenate([p, 1.0 - p])
    outcome = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    which = np.minimum((predicted * num_bins).astype(int), num_bins - 1)
    bins, ece = [], 0.0
    for b in range(num_bins):
        inside = which == b
        if inside.any():
            mean_p, rate = float(predicted[inside].mean()), float(outcome[inside].mean())
            bins.append({"p": mean_p, "win_rate": rate, "count": int(inside.sum())})
            ece += inside.sum() / predicted.size * abs(mean_p - rate)
    return {"bins": bins, "ece": float(ece), "accuracy": float((margin > 0).mean())}


def reward_model_calibration(rm: Any, pairs: Sequence[Any], num_bins: int = 10) -> dict[str, Any]:
    """:func:`pair_calibration` of ``rm``'s raw margins on ``pairs`` (prompt, chosen, rejected).

    The normalisation gain is divided out, so this holds before and after normalising.
    """
    prompts = [pair.prompt for pair in pairs]
    chosen = rm.score(prompts, [pair.chosen for pair in pairs])
    rejected = rm.score(prompts, [pair.rejected for pair in pairs])
    return pair_calibration((chosen - rejected) / rm.gain, num_bins)

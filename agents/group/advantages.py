"""Group-relative advantages of sequence rewards: GRPO's z-score and RLOO's leave-one-out.

Both take the rewards of one rollout as a ``(G, k)`` array, one row per prompt group of k
completions, and return one advantage per completion (docs/grpo_rloo.md, "Advantages").
"""

from __future__ import annotations

import numpy as np

#: GRPO's denominator guard: the std of a group whose rewards are all equal is 0.
GRPO_EPS = 1e-4


def check_groups(rewards: np.ndarray, least: int) -> np.ndarray:
    """``rewards`` as a float64 ``(G, k)`` array with k >= ``least``, or a clear error."""
    array = np.asarray(rewards, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < least:
        raise ValueError(
            f"expected (groups, k) sequence rewards with k >= {least}, got shape {array.shape}; "
            f"build the env with group_size >= {least}."
        )
    return array


def grpo_advantages(rewards: np.ndarray, eps: float = GRPO_EPS) -> np.ndarray:
    """``(R − mean) / (std + eps)`` within each group (std over its k rewards, ddof 0).

    Example:
        >>> grpo_advantages(np.array([[1.0, 3.0], [2.0, 2.0]])).round(3)
        array([[-1.   ,  1.   ],
               [ 0.   ,  0.   ]])
    """
    array = check_groups(rewards, 2)
    centred = array - array.mean(axis=1, keepdims=True)
    return centred / (array.std(axis=1, keepdims=True) + eps)


def rloo_advantages(rewards: np.ndarray) -> np.ndarray:
    """``R_i − mean_{j≠i} R_j`` within each group: the leave-one-out baseline.

    Example:
        >>> rloo_advantages(np.array([[1.0, 3.0, 5.0]]))
        array([[-3.,  0.,  3.]])
    """
    array = check_groups(rewards, 2)
    k = array.shape[1]
    others = (array.sum(axis=1, keepdims=True) - array) / (k - 1)
    return array - others

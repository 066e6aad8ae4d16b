"""How much signal a round's groups carry: the spread of rewards within each prompt group."""

from __future__ import annotations

import numpy as np
from rlhf_gym.distributed import all_reduce_sum, is_distributed


def group_reward_stats(rewards: np.ndarray) -> dict[str, float]:
    """``objective/group_reward_std`` and ``objective/degenerate_groups`` of ``(G, k)`` rewards.

    The mean within-group std of the sequence rewards, and the fraction of groups whose k
    rewards are all equal (zero advantage: no gradient). Over every rank's groups.

    Example:
        >>> group_reward_stats(np.array([[1.0, 3.0], [2.0, 2.0]]))
        {'objective/group_reward_std': 0.5, 'objective/degenerate_groups': 0.5}
    """
    stds = rewards.std(axis=1)
    local = [float(stds.sum()), float((stds == 0).sum()), float(len(stds))]
    total = all_reduce_sum(local) if is_distributed() else local
    return {
        "objective/group_reward_std": float(total[0] / total[2]),
        "objective/degenerate_groups": float(total[1] / total[2]),
    }

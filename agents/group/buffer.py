"""A rollout buffer of whole rounds: one completion per row, group advantages, no GAE.

Collection is episode-aligned (every row starts its episode at the rollout's first step and
ends it once), so each env column holds one completion in its first ``lengths[env]`` steps; the
steps after it, while the row waited for its round, are left out. The sequence reward is the
sum of the completion's per-token rewards (the env's episode return); its group advantage is
broadcast to every token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from rlhf_gym.agents.common.buffers import LMRolloutBuffer


class GroupRolloutBufferSamples(NamedTuple):
    """:class:`~rlhf_gym.agents.common.buffers.LMRolloutBufferSamples` plus reference log-probs.

    ``advantages`` are the group advantages (equal along a sequence), ``returns`` the sequence
    rewards, ``ref_log_prob`` ``(B, T)`` the reference's log-prob of each action (from the env).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor
    actions: torch.Tensor
    old_values: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    token_mask: torch.Tensor
    ref_log_prob: torch.Tensor


class GroupRolloutBuffer(LMRolloutBuffer):
    """Steps of one round, then :meth:`finish_round` for group advantages and segments.

    Args:
        *args: as :class:`LMRolloutBuffer`.
        advantages: maps ``(G, k)`` sequence rewards to ``(G, k)`` advantages.
        group_size: k, the env's rows per prompt group.
        **kwargs: as :class:`LMRolloutBuffer` (no whitening: advantages are group-relative).
    """

    def __init__(
        self,
        *args: Any,
        advantages: Callable[[np.ndarray], np.ndarray],
        group_size: int,
        **kwargs: Any,
    ) -> None:
        self.advantage_fn, self.group_size = advantages, group_size
        super().__init__(*args, whiten_rewards=False, whiten_advantages=False, **kwargs)

    def reset(self) -> None:
        """The base's arrays (episode lengths too), reference log-probs, groups, rewards."""
        super().reset()
        self.ref_log_probs = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.groups = np.full(self.n_envs, -1, dtype=np.int64)
        self.sequence_rewards = np.zeros(self.n_envs)

    def add_step(
        self, *args: Any, ref_log_prob: np.ndarray, live: np.ndarray, group: np.ndarray
    ) -> None:
        """The base's :meth:`add_step` and what the group update needs.

        Args:
            *args: ``add``'s (obs, action, reward, episode_start, value, log_prob).
            ref_log_prob: ``(N,)`` the env's ``info["ref_logprob"]``.
            live: ``(N,)`` rows whose completion this step belongs to (not yet ended).
            group: ``(N,)`` the env's ``info["group"]``.
        """
        self.ref_log_probs[self.pos] = ref_log_prob
        self.groups = np.where(live, group, self.groups)
        super().add_step(*args, live=live)

    def finish_round(self) -> None:
        """Sequence rewards, their group advantages on every token, one segment per row.

        Raises:
            RuntimeError: when the rows are not whole groups of one round (the env was
                stepped outside the agent, or its ``group_size`` is not the buffer's).
        """
        groups = self.groups.reshape(-1, self.group_size)
        if self.lengths is None or (self.lengths == 0).any() or (groups != groups[:, :1]).any():
            raise RuntimeError(
                f"the rollout's rows are not whole groups of {self.group_size} (group ids "
                f"{self.groups.tolist()}); step a grouped env only through the agent."
            )
        self.close()
        in_completion = self.counted
        self.sequence_rewards = (self.rewards * in_completion).sum(axis=0).astype(np.float64)
        advantages = self.advantage_fn(self.sequence_rewards.reshape(-1, self.group_size))
        per_row = np.asarray(advantages, dtype=np.float32).reshape(-1)
        self.advantages = (in_completion * per_row[None, :]).astype(np.float32)
        self.returns = (in_completion * self.sequence_rewards[None, :]).astype(np.float32)

    def _get_sequence_samples(self, indices: np.ndarray) -> GroupRolloutBufferSamples:  # type: ignore[override]
        base = super()._get_sequence_samples(indices)
        chosen = [self.segments[i] for i in indices]
        ref = self.gather("ref_log_probs", chosen, base.actions.shape[1])
        return GroupRolloutBufferSamples(*base, ref_log_prob=self.to_torch(ref))

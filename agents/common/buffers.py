"""A rollout buffer that hands an LM agent whole token sequences, not single transitions.

Steps are stored as SB3 stores them (``(n_steps, n_envs)`` arrays, observations included). After
GAE, each env's column is cut into *segments* at episode starts: an episode, or the part of one
that falls inside the rollout. A segment's sequence is the observation at its first step (the
prompt, or prompt plus earlier tokens when the episode began in a previous rollout) followed by
the segment's actions, so one teacher-forced forward gives every log-prob and value it needs.

An episode-aligned rollout (the LM agents' default) holds exactly one whole episode per env
column, in its first ``lengths[env]`` steps (:meth:`LMRolloutBuffer.add_step`); the steps after
it, while the row waited for the others, count for nothing: not in GAE, whitening or the update.

A critic that is a separate model is not run during the rollout: :meth:`LMRolloutBuffer.close`
cuts the segments, and :meth:`LMRolloutBuffer.fill_values` fills every step's value (and the
bootstrap values) with one no-grad forward per ``batch_size`` segments, before GAE.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import NamedTuple

import numpy as np
import torch
from rlhf_gym.distributed import global_mean_std
from stable_baselines3.common.buffers import DictRolloutBuffer


class LMRolloutBufferSamples(NamedTuple):
    """A minibatch of sequences (right-padded); ``(B, T)`` fields are per generated token.

    Attributes:
        input_ids: ``(B, L)`` context followed by the segment's actions.
        attention_mask: ``(B, L)``.
        positions: ``(B, T)`` index in ``input_ids`` of the token that predicted each action.
        actions: ``(B, T)``.
        old_values: ``(B, T)`` values at act time, or from the critic's pass after the rollout.
        old_log_prob: ``(B, T)`` log-probs at act time (temperature-scaled).
        advantages: ``(B, T)`` GAE advantages (whitened over the rollout's tokens, all ranks').
        returns: ``(B, T)`` value targets.
        token_mask: ``(B, T)`` True on real tokens.
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


class SequenceInputs(NamedTuple):
    """Teacher-forced inputs of some segments (right-padded).

    Attributes:
        input_ids: ``(B, L)`` context followed by the segment's actions.
        attention_mask: ``(B, L)``.
        positions: ``(B, P)`` index in ``input_ids`` of the token that predicted each action,
            then (``with_next``) the last action's own index; padding repeats the last one.
        token_mask: ``(B, T)`` True on real actions.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor
    token_mask: torch.Tensor


ValueFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def whiten(
    values: np.ndarray, shift_mean: bool = True, eps: float = 1e-8, mask: np.ndarray | None = None
) -> np.ndarray:
    """Scale to unit variance (and zero mean if ``shift_mean``).

    The mean and std are over every rank's values in a distributed run (one process: these
    values), so that K ranks whiten as one process holding the union would. With ``mask``, only
    the entries it marks count and the others come back as 0.
    """
    mean, std = global_mean_std(values if mask is None else values[mask])
    out = (values - mean) / (std + eps)
    out = out if shift_mean else out + mean / (std + eps)
    return out if mask is None else np.where(mask, out, 0.0)


class LMRolloutBuffer(DictRolloutBuffer):
    """SB3's Dict rollout buffer plus sequence minibatches (see the module docstring).

    Args:
        *args: as :class:`~stable_baselines3.common.buffers.DictRolloutBuffer`.
        whiten_rewards: scale the per-token rewards to unit variance before GAE (no mean shift).
        whiten_advantages: whiten advantages over all tokens of the rollout.
        **kwargs: as :class:`~stable_baselines3.common.buffers.DictRolloutBuffer`.
    """

    def __init__(
        self, *args, whiten_rewards: bool = False, whiten_advantages: bool = True, **kwargs
    ) -> None:
        self.whiten_rewards = whiten_rewards
        self.whiten_advantages = whiten_advantages
        self.segments: list[tuple[int, int, int]] = []
        self.lengths: np.ndarray | None = None  # episode-aligned: each column's episode length
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        """SB3's arrays, and no segments until :meth:`close`."""
        super().reset()
        self.segments = []
        self.lengths = None

    def add_step(self, *args, live: np.ndarray) -> None:
        """:meth:`add` one step of an episode-aligned rollout.

        Args:
            *args: ``add``'s (obs, action, reward, episode_start, value, log_prob).
            live: ``(N,)`` rows whose episode this step belongs to (not yet ended); the
                others only wait, and their reward and value are stored as 0.
        """
        if self.lengths is None:
            self.lengths = np.zeros(self.n_envs, dtype=np.int64)
        obs, action, reward, episode_start, value, log_prob = args
        self.lengths += live
        live_t = torch.as_tensor(live, device=value.device)
        self.add(
            obs, action, np.where(live, reward, 0.0), episode_start,
            torch.where(live_t, value, 0.0), log_prob,
        )  # fmt: skip

    def close(self) -> None:
        """Cut the filled rollout into segments: one per episode-aligned column, else at starts."""
        if self.lengths is None:
            self.segments = self._find_segments()
            return
        if (self.lengths == 0).any():
            raise RuntimeError("an episode-aligned rollout needs at least one step of every row.")
        self.segments = [(env, 0, int(self.lengths[env])) for env in range(self.n_envs)]
        waited = np.arange(self.buffer_size)[:, None] >= self.lengths[None, :]
        self.episode_starts[waited] = 1.0  # GAE stops at each episode's last step
        self.full = True  # the round may end before buffer_size steps: its columns are whole

    @property
    def counted(self) -> np.ndarray | None:
        """``(n_steps, n_envs)`` True on the steps of an episode-aligned rollout's episodes."""
        if self.lengths is None:
            return None
        return np.arange(self.buffer_size)[:, None] < self.lengths[None, :]

    def compute_returns_and_advantage(self, last_values: torch.Tensor, dones: np.ndarray) -> None:
        """GAE as in SB3 (optionally on whitened rewards), then whiten; segments if not cut yet.

        Episode-aligned, only the steps of the episodes count in either whitening.
        """
        if not self.segments:
            self.close()
        counted = self.counted
        if self.whiten_rewards:
            self.rewards = whiten(self.rewards, False, mask=counted).astype(np.float32)
        super().compute_returns_and_advantage(last_values, dones)
        if counted is not None:  # a waiting step has no advantage and no return
            self.advantages, self.returns = self.advantages * counted, self.returns * counted
        if self.whiten_advantages:
            self.advantages = whiten(self.advantages, mask=counted).astype(np.float32)

    def fill_values(self, value_fn: ValueFn, batch_size: int, dones: np.ndarray) -> np.ndarray:
        """Every step's value from one no-grad forward per ``batch_size`` segments.

        Args:
            value_fn: ``(input_ids, attention_mask, positions)`` to ``(B, P)`` values, e.g. the
                policy's ``sequence_values``.
            batch_size: segments per forward.
            dones: ``(n_envs,)`` whether each env's episode ended at the rollout's last step.

        Returns:
            ``(n_envs,)`` float32 bootstrap values: the value after a segment's last action
            where the rollout cut an episode that goes on, else 0.

        Raises:
            FloatingPointError: when a value is not finite (the critic diverged).
        """
        assert self.segments, "call close() first: values are filled per segment"
        last = np.zeros(self.n_envs, dtype=np.float32)
        for start in range(0, len(self.segments), batch_size):
            chosen = self.segments[start : start + batch_size]
            inputs = self.sequence_inputs(chosen, with_next=True)
            with torch.no_grad():
                values = value_fn(*inputs[:3]).float().cpu().numpy()
            for row, (env, first, end) in enumerate(chosen):
                self.values[first:end, env] = values[row, : end - first]
                if end == self.buffer_size and not dones[env]:
                    last[env] = values[row, end - first]
        if not (np.isfinite(self.values).all() and np.isfinite(last).all()):
            raise FloatingPointError(
                "the critic gave non-finite values; lower the learning rate or vf_coef, or "
                "check the critic's weights (the last saved checkpoint is untouched)."
            )
        return last

    def _find_segments(self) -> list[tuple[int, int, int]]:
        """``(env, first_step, end_step)`` for every episode piece in the rollout."""
        segments = []
        for env in range(self.n_envs):
            starts = [0] + [t for t in range(1, self.buffer_size) if self.episode_starts[t, env]]
            ends = starts[1:] + [self.buffer_size]
            segments.extend((env, a, b) for a, b in zip(starts, ends, strict=True))
        return segments

    @property
    def num_sequences(self) -> int:
        """Number of segments (sequences) in the rollout."""
        return len(self.segments)

    def _sequence(self, env: int, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of one segment and the position predicting each of its actions."""
        ids = self.observations["input_ids"][first, env]
        context = ids[: int(self.observations["attention_mask"][first, env].sum())]
        actions = self.actions[first:end, env, 0].astype(np.int64)
        positions = len(context) - 1 + np.arange(end - first)
        return np.concatenate([context.astype(np.int64), actions]), positions

    def get_sequences(
        self, batch_size: int, rng: np.random.Generator
    ) -> Generator[LMRolloutBufferSamples, None, None]:
        """Shuffled minibatches of ``batch_size`` sequences, trimmed to their longest member."""
        assert self.full and self.segments, "call compute_returns_and_advantage first"
        order = rng.permutation(len(self.segments))
        for start in range(0, len(order), batch_size):
            yield self._get_sequence_samples(order[start : start + batch_size])

    def gather(self, name: str, chosen: list[tuple[int, int, int]], steps: int) -> np.ndarray:
        """``(len(chosen), steps)`` float32: the per-step array ``name`` of each segment."""
        out = np.zeros((len(chosen), steps), dtype=np.float32)
        for row, (env, first, end) in enumerate(chosen):
            out[row, : end - first] = getattr(self, name)[first:end, env]
        return out

    def sequence_inputs(
        self, chosen: list[tuple[int, int, int]], with_next: bool = False
    ) -> SequenceInputs:
        """The teacher-forced inputs of ``chosen`` segments, trimmed to their longest member.

        Args:
            chosen: ``(env, first_step, end_step)`` segments.
            with_next: add one position per row, its last action's own index: the value of
                the observation after the segment (a bootstrap value if the rollout cut it).
        """
        built = [self._sequence(*segment) for segment in chosen]
        length = max(len(seq) for seq, _ in built)
        steps = max(end - first for _, first, end in chosen)
        ids = np.zeros((len(chosen), length), dtype=np.int64)
        mask = np.zeros_like(ids)
        positions = np.zeros((len(chosen), steps + with_next), dtype=np.int64)
        token_mask = np.zeros((len(chosen), steps), dtype=bool)
        for row, (seq, pos) in enumerate(built):
            n = len(pos)
            ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1
            token_mask[row, :n] = True
            # with_next: one more position, the last action's own; padding repeats the last one
            positions[row, :n], positions[row, n:] = pos, pos[-1] + with_next
        as_tensor = self.to_torch
        return SequenceInputs(
            input_ids=as_tensor(ids).long(),
            attention_mask=as_tensor(mask).long(),
            positions=as_tensor(positions).long(),
            token_mask=torch.as_tensor(token_mask, device=self.device),
        )

    def _get_sequence_samples(self, indices: np.ndarray) -> LMRolloutBufferSamples:
        chosen = [self.segments[i] for i in indices]
        inputs = self.sequence_inputs(chosen)
        steps = inputs.token_mask.shape[1]
        fields = {
            name: self.to_torch(self.gather(name, chosen, steps))
            for name in ("values", "log_probs", "advantages", "returns")
        }
        actions = np.zeros((len(chosen), steps), dtype=np.int64)
        for row, (env, first, end) in enumerate(chosen):
            actions[row, : end - first] = self.actions[first:end, env, 0]
        return LMRolloutBufferSamples(
            input_ids=inputs.input_ids,
            attention_mask=inputs.attention_mask,
            positions=inputs.positions,
            actions=self.to_torch(actions).long(),
            old_values=fields["values"],
            old_log_prob=fields["log_probs"],
            advantages=fields["advantages"],
            returns=fields["returns"],
            token_mask=inputs.token_mask,
        )

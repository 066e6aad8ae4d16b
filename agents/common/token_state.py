"""The policy's recurrent state during a rollout: one KV cache row per env, as plain data.

Like RecurrentPPO's ``RNNStates``, the state is carried from step to step and a row is reset on
its env's episode start; the policy advances it
(:meth:`~rlhf_gym.agents.common.policies.LMActorCriticPolicy.advance`), the state never calls
back into the policy. Each step feeds only the tokens an observation adds to what the row has
already seen (one action, or the whole prompt after a reset), so a vector step costs one cached
forward of the policy, never a re-encoding. A separate critic has no state here: its values are
computed once per sequence after the rollout (:mod:`rlhf_gym.agents.common.sequence_values`).

A LoRA policy whose env takes its reference log-probs from the agent runs a state *with the
reference*: its runner has 2N rows, the second N with adapters off, fed the same tokens, so one
forward gives both (:mod:`rlhf_gym.agents.common.fused_reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rlhf_gym.envs.rewards import chosen_logprobs
from rlhf_gym.lm.runner import CachedCausalLM, CachedStep


@dataclass
class TokenStep:
    """Temperature-scaled logits ``(N, V)`` and values ``(N,)`` at each row's last token.

    ``reference_logits``: the reference's temperature-scaled ``(N, V)`` logits, from a state
    with the reference (None without).
    """

    logits: torch.Tensor
    values: torch.Tensor
    reference_logits: torch.Tensor | None = None

    def reference_logprobs(self, actions: torch.Tensor) -> torch.Tensor | None:
        """``log π_ref(a_t|s_t)`` ``(N,)`` of ``actions``, as the env computes it; None without."""
        if self.reference_logits is None:
            return None
        return chosen_logprobs(self.reference_logits, actions)


@dataclass
class TokenCacheState:
    """Per-env KV caches of the policy, kept in step with the env's observations.

    Attributes:
        actor: the cached runner of the policy LM (one row per env; two with the reference).
        lengths: ``(N,)`` int64, how many tokens each row has seen (0: nothing yet).
        retired: ``(N,)`` bool, rows whose episode ended and that wait for their round: they
            are fed nothing and left out of every forward until their episode start.
        with_reference: the actor's rows N..2N-1 run the reference (a LoRA policy's base
            weights) on the same tokens as rows 0..N-1.
    """

    actor: CachedCausalLM
    lengths: np.ndarray
    retired: np.ndarray
    with_reference: bool = False

    @classmethod
    def fresh(cls, actor: CachedCausalLM, with_reference: bool = False) -> TokenCacheState:
        """A state whose rows have seen nothing and none waits (N: half the actor's rows)."""
        rows = actor.num_rows // 2 if with_reference else actor.num_rows
        zeros = np.zeros(rows, dtype=np.int64)
        return cls(actor, zeros, np.zeros(rows, dtype=bool), with_reference)

    def feed(self, obs: dict[str, torch.Tensor], episode_starts: np.ndarray | None) -> tuple:
        """:func:`new_tokens` of ``obs`` for this state, whose counts it updates."""
        ids, mask = (obs[key].detach().cpu().numpy() for key in ("input_ids", "attention_mask"))
        tokens, resets, self.lengths = new_tokens(
            self.lengths, ids, mask, episode_starts, self.retired
        )
        return tokens, resets

    def forward(
        self, tokens: list[list[int]], resets: list[bool]
    ) -> tuple[CachedStep, torch.Tensor | None]:
        """Feed the actor what :meth:`feed` gave, with one forward.

        Returns:
            The policy rows' logits (and hidden states), and the reference rows' logits (None
            without the reference).
        """
        if not self.with_reference:
            return self.actor.advance(tokens, resets), None
        step, n = self.actor.advance(tokens * 2, resets * 2), len(tokens)
        hidden = None if step.hidden is None else step.hidden[:n]
        return CachedStep(step.logits[:n], hidden), step.logits[n:]

    def retire(self, rows: np.ndarray) -> None:
        """Take ``rows`` out of the batch until their next episode start (both of their rows)."""
        if len(rows):
            self.retired[rows] = True
            both = np.concatenate([rows, rows + len(self.retired)]) if self.with_reference else rows
            self.actor.retire(both.tolist())


def new_tokens(
    lengths: np.ndarray,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    episode_starts: np.ndarray | None = None,
    retired: np.ndarray | None = None,
) -> tuple[list[list[int]], list[bool], np.ndarray]:
    """What an observation adds to each row: the ids to feed, whether to reset, the new counts.

    A row resets when it has seen nothing yet or its episode starts; it is then fed its whole
    observation, else only the tokens past what it has seen.

    Args:
        lengths: ``(N,)`` tokens each row has seen (left unchanged).
        input_ids: ``(N, W)`` the observation's ids, left-aligned.
        attention_mask: ``(N, W)`` 1 on real tokens.
        episode_starts: per row, whether the observation starts a new episode.
        retired: per row, whether it waits out of the batch (fed nothing, its count kept);
            updated in place: an episode start brings a row back.

    Returns:
        Per row the ids to feed and whether to reset, and the ``(N,)`` counts afterwards.

    Raises:
        ValueError: when a row's observation is shorter than what it has seen and no episode
            start says so.

    Example:
        >>> ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])
        >>> new_tokens(np.array([2, 3]), ids, (ids > 0).astype(int), np.array([False, True]))
        ([[7], [8, 9]], [False, True], array([3, 2]))
    """
    counts = attention_mask.sum(axis=1).astype(np.int64)
    tokens: list[list[int]] = []
    resets: list[bool] = []
    for row, (seen, count) in enumerate(zip(lengths.tolist(), counts.tolist(), strict=True)):
        reset = seen == 0 or bool(episode_starts is not None and episode_starts[row])
        if retired is not None and retired[row]:
            if not reset:  # waits for its round: nothing to feed
                tokens.append([])
                resets.append(False)
                counts[row] = seen
                continue
            retired[row] = False
        start = 0 if reset else seen
        if count < start:
            raise ValueError(
                f"env {row}'s observation has {count} tokens but the cache already holds "
                f"{start}; mark the env's episode start so its row is reset."
            )
        tokens.append(input_ids[row, start:count].tolist())
        resets.append(reset)
    return tokens, resets, counts

"""The policy's recurrent state during a rollout: one KV cache row per env.

Like RecurrentPPO's LSTM states, the state is carried from step to step and a row is reset on
its env's episode start. Each step feeds only the tokens an observation adds to what the row has
already seen (one action, or the whole prompt after a reset), so a vector step costs one cached
forward of the policy (plus one of a separate critic, if any), never a re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from rlhf_gym.lm.runner import CachedCausalLM

if TYPE_CHECKING:
    from rlhf_gym.agents.common.policies import LMActorCriticPolicy


@dataclass
class TokenStep:
    """Temperature-scaled logits ``(N, V)`` and values ``(N,)`` at each row's last token."""

    logits: torch.Tensor
    values: torch.Tensor


class TokenCacheState:
    """Per-env KV caches of the policy (and critic) kept in step with the env's observations.

    Args:
        policy: the policy whose LM (and critic trunk) are run.
        num_envs: number of rows.
    """

    def __init__(self, policy: LMActorCriticPolicy, num_envs: int) -> None:
        self.policy = policy
        self.num_envs = num_envs
        self.actor = CachedCausalLM(
            policy.model,
            num_envs,
            temperature=policy.temperature,
            output_hidden=policy.critic_trunk is None,
        )
        self.critic = None
        if policy.critic_trunk is not None:
            self.critic = CachedCausalLM(policy.critic_trunk, num_envs, output_hidden=True)
        self.lengths = np.zeros(num_envs, dtype=np.int64)  # tokens each row has seen

    @property
    def num_forwards(self) -> int:
        """Cached forwards of the policy LM so far."""
        return self.actor.num_forwards

    def _new_tokens(
        self, ids: np.ndarray, mask: np.ndarray, episode_starts: np.ndarray | None
    ) -> tuple[list[list[int]], list[bool]]:
        """Per row, the ids to feed and whether to reset, from the observation."""
        tokens: list[list[int]] = []
        resets: list[bool] = []
        lengths = mask.sum(axis=1)
        for row in range(self.num_envs):
            reset = self.lengths[row] == 0 or bool(
                episode_starts is not None and episode_starts[row]
            )
            start = 0 if reset else int(self.lengths[row])
            if lengths[row] < start:
                raise ValueError(
                    f"env {row}'s observation has {lengths[row]} tokens but the cache already "
                    f"holds {start}; mark the env's episode start so its row is reset."
                )
            tokens.append(ids[row, start : lengths[row]].tolist())
            resets.append(reset)
            self.lengths[row] = lengths[row]
        return tokens, resets

    def advance(
        self, obs: dict[str, torch.Tensor], episode_starts: np.ndarray | None = None
    ) -> TokenStep:
        """Bring every row up to its observation with one cached forward; logits and values.

        Args:
            obs: the env's observation batch (``input_ids``, ``attention_mask``).
            episode_starts: per env, whether the observation starts a new episode.
        """
        ids = obs["input_ids"].detach().cpu().numpy()
        mask = obs["attention_mask"].detach().cpu().numpy()
        tokens, resets = self._new_tokens(ids, mask, episode_starts)
        with self.policy.autocast():
            step = self.actor.advance(tokens, resets)
            hidden = step.hidden
            if self.critic is not None:
                hidden = self.critic.advance(tokens, resets).hidden
        assert hidden is not None
        return TokenStep(step.logits, self.policy.value_of(hidden))

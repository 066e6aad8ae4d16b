"""The values GAE needs after a rollout: from the act forward, or once per sequence.

A value head on the policy's trunk reads the hidden state the act forward already computed, so
the buffer holds its values and only the bootstrap costs one cached step. A separate critic (a
reward model's trunk) is not run per token: after the rollout it runs one no-grad
teacher-forced forward per ``batch_size`` sequences, which fills every step's value and the
bootstrap values (:meth:`~rlhf_gym.agents.common.buffers.LMRolloutBuffer.fill_values`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rlhf_gym.agents.common.buffers import LMRolloutBuffer
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.agents.common.token_state import TokenCacheState
from stable_baselines3.common.utils import obs_as_tensor


def bootstrap_values(
    policy: LMActorCriticPolicy,
    buffer: LMRolloutBuffer,
    state: TokenCacheState,
    last_obs: dict[str, Any],
    dones: np.ndarray,
    batch_size: int,
) -> torch.Tensor:
    """The bootstrap values of a collected rollout, after filling a separate critic's values.

    Args:
        policy: the policy that collected the rollout.
        buffer: the rollout, cut into segments (``buffer.close()``).
        state: the policy's rollout state, brought up to ``last_obs`` for the bootstrap.
        last_obs: the env's observation after the rollout's last step.
        dones: ``(n_envs,)`` whether each episode ended at the last step (its value is unused).
        batch_size: sequences per critic forward.

    Returns:
        ``(n_envs,)`` values of ``last_obs``; zeros when every episode ended with the rollout.
    """
    if not policy.values_from_act:
        return torch.as_tensor(buffer.fill_values(policy.sequence_values, batch_size, dones))
    if dones.all():
        return torch.zeros(len(dones))
    with torch.no_grad():  # some episodes continue past the rollout: bootstrap their value
        obs_tensor = obs_as_tensor(last_obs, policy.device)  # type: ignore[arg-type]
        return policy.advance(state, obs_tensor, dones).values

"""The PPO loss over the tokens of a sequence minibatch (see docs/ppo.md, "The loss")."""

from __future__ import annotations

import torch
from rlhf_gym.agents.common.buffers import LMRolloutBufferSamples
from rlhf_gym.agents.common.utils import masked_mean

#: The logged terms of :func:`ppo_losses`, in its order.
PPO_TERMS = (
    "loss/policy",
    "loss/value",
    "loss/total",
    "policy/approxkl",
    "policy/clipfrac",
    "policy/entropy",
    "val/ratio",
    "val/mean",
)


def ppo_losses(
    batch: LMRolloutBufferSamples,
    log_prob: torch.Tensor,
    values: torch.Tensor,
    entropy: torch.Tensor,
    clip_range: float,
    clip_range_vf: float | None,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped policy loss, clipped value loss and entropy bonus, averaged over real tokens.

    Returns:
        The total loss and the logged terms (:data:`PPO_TERMS`).
    """
    mask = batch.token_mask
    log_ratio = log_prob - batch.old_log_prob
    ratio = torch.exp(log_ratio)
    advantages = batch.advantages
    pg = torch.max(
        -advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    )
    value_error = (values - batch.returns) ** 2
    if clip_range_vf is not None:
        clipped = batch.old_values + torch.clamp(
            values - batch.old_values, -clip_range_vf, clip_range_vf
        )
        value_error = torch.max(value_error, (clipped - batch.returns) ** 2)
    policy_loss = masked_mean(pg, mask)
    value_loss = 0.5 * masked_mean(value_error, mask)
    entropy_mean = masked_mean(entropy, mask)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    with torch.no_grad():
        terms = {
            "loss/policy": policy_loss.item(),
            "loss/value": value_loss.item(),
            "loss/total": loss.item(),
            "policy/approxkl": 0.5 * masked_mean(log_ratio**2, mask).item(),
            "policy/clipfrac": masked_mean(((ratio - 1).abs() > clip_range).float(), mask).item(),
            "policy/entropy": entropy_mean.item(),
            "val/ratio": masked_mean(ratio, mask).item(),
            "val/mean": masked_mean(values, mask).item(),
        }
    return loss, terms

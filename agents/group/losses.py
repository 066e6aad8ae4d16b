"""The group algorithms' loss: PPO's clipped ratio per token, averaged per sequence, no value.

Each sequence's token terms are averaged over its own tokens, then the sequences are averaged
(DeepSeekMath's 1/G Σ_i 1/|o_i| Σ_t), so a long completion weighs as much as a short one.
"""

from __future__ import annotations

import torch
from rlhf_gym.agents.common.utils import masked_mean
from rlhf_gym.agents.group.buffer import GroupRolloutBufferSamples

#: The logged terms of :func:`group_losses`, in its order.
GROUP_TERMS = (
    "loss/policy",
    "loss/kl",
    "loss/total",
    "policy/approxkl",
    "policy/clipfrac",
    "policy/entropy",
    "val/ratio",
)


def sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's real tokens, then over rows (padding never enters, even as NaN)."""
    summed = torch.where(mask, values, torch.zeros_like(values)).sum(dim=1)
    return (summed / mask.sum(dim=1).clamp(min=1)).mean()


def k3_kl(log_prob: torch.Tensor, ref_log_prob: torch.Tensor) -> torch.Tensor:
    """Per token ``exp(ref − logp) − (ref − logp) − 1`` (>= 0, unbiased for KL(π‖π_ref))."""
    log_ratio = ref_log_prob - log_prob
    return torch.exp(log_ratio) - log_ratio - 1


def group_losses(
    batch: GroupRolloutBufferSamples,
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    clip_range: float,
    beta: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped policy loss plus ``beta`` · k3 KL to the reference, minus the entropy bonus.

    Args:
        batch: a minibatch of whole completions.
        log_prob: ``(B, T)`` current log-probs of the actions (with grad).
        entropy: ``(B, T)`` current entropies.
        clip_range: the ratio clip ε.
        beta: the k3 KL coefficient (0: no KL in the loss, as RLOO has it in the reward).
        ent_coef: the entropy bonus.

    Returns:
        The total loss and the logged terms (:data:`GROUP_TERMS`).
    """
    mask = batch.token_mask
    log_ratio = torch.where(mask, log_prob - batch.old_log_prob, torch.zeros_like(log_prob))
    ratio = torch.exp(log_ratio)
    advantages = batch.advantages
    pg = torch.max(
        -advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    )
    safe_log_prob = torch.where(mask, log_prob, batch.ref_log_prob)  # padding: KL term 0
    kl = sequence_mean(k3_kl(safe_log_prob, batch.ref_log_prob), mask)
    policy_loss = sequence_mean(pg, mask)
    entropy_mean = sequence_mean(entropy, mask)
    loss = policy_loss + beta * kl - ent_coef * entropy_mean
    with torch.no_grad():
        terms = {
            "loss/policy": policy_loss.item(),
            "loss/kl": kl.item(),
            "loss/total": loss.item(),
            "policy/approxkl": 0.5 * masked_mean(log_ratio**2, mask).item(),
            "policy/clipfrac": masked_mean(((ratio - 1).abs() > clip_range).float(), mask).item(),
            "policy/entropy": entropy_mean.item(),
            "val/ratio": masked_mean(ratio, mask).item(),
        }
    return loss, terms

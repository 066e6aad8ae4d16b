"""The DPO loss (Rafailov et al. 2023) on summed completion log-probs, and its logged metrics.

Per pair, with the implicit rewards ``r = β · (log π(y|x) − log π_ref(y|x))``:

    loss = −log σ(r_w − r_l)      (averaged over the batch)

No reward model and no sampling: the policy's own log-ratio to the frozen reference is the
reward it is trained to rank, chosen over rejected.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def implicit_reward_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Batch means of the implicit rewards: chosen, rejected, accuracy (r_w > r_l), margin."""
    chosen, rejected = chosen.detach().float(), rejected.detach().float()
    return {
        "dpo/rewards_chosen": chosen.mean().item(),
        "dpo/rewards_rejected": rejected.mean().item(),
        "dpo/reward_accuracy": (chosen > rejected).float().mean().item(),
        "dpo/reward_margin": (chosen - rejected).mean().item(),
    }


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean of ``−log σ(β·[(π_w − ref_w) − (π_l − ref_l)])`` over the batch.

    Args:
        policy_chosen: ``(B,)`` summed log-probs of the chosen completions under the policy.
        policy_rejected: ``(B,)`` the same for the rejected completions.
        ref_chosen: ``(B,)`` the chosen completions' summed log-probs under the reference.
        ref_rejected: ``(B,)`` the rejected completions' under the reference.
        beta: β, the strength of the implicit KL constraint (larger: stay closer to the
            reference).

    Returns:
        The scalar loss (differentiable in the policy's log-probs) and the metrics of
        :func:`implicit_reward_metrics` (``dpo/rewards_chosen``, ``dpo/rewards_rejected``,
        ``dpo/reward_accuracy``, ``dpo/reward_margin``).
    """
    rewards_chosen = beta * (policy_chosen - ref_chosen)
    rewards_rejected = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(rewards_chosen - rewards_rejected).mean()
    return loss, implicit_reward_metrics(rewards_chosen, rewards_rejected)

"""Summed log-probs of the completion tokens of padded (prompt, completion) rows."""

from __future__ import annotations

import torch
from rlhf_gym.lm.positions import position_ids_from_mask
from torch import nn


def sequence_logprobs(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_mask: torch.Tensor,
) -> torch.Tensor:
    """``Σ_t log π(y_t | x, y_<t)`` over each row's completion tokens, with one forward.

    Args:
        model: a causal LM.
        input_ids: ``(B, L)`` right-padded rows, prompt then completion (EOS included).
        attention_mask: ``(B, L)``: 1 on real tokens.
        completion_mask: ``(B, L)``: 1 on the completion's tokens (never on position 0: a
            token needs one before it to be predicted from).

    Returns:
        ``(B,)`` float32 sums, differentiable when grad is on.
    """
    positions = position_ids_from_mask(attention_mask)  # as the sampler counts them
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions
    ).logits
    logits = logits[:, :-1].float()  # logits at t predict the token at t + 1
    targets = input_ids[:, 1:].unsqueeze(-1)
    token_lp = logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (token_lp * completion_mask[:, 1:].to(token_lp.dtype)).sum(dim=1)

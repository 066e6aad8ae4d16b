"""Small tensor helpers any LM agent's loss can use (like ``sb3_contrib.common.utils``)."""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the True entries of ``mask`` (padding may hold anything).

    Example:
        >>> masked_mean(torch.tensor([1.0, 3.0, 99.0]), torch.tensor([True, True, False]))
        tensor(2.)
    """
    return torch.where(mask, values, torch.zeros_like(values)).sum() / mask.sum().clamp(min=1)

"""Position ids for padded batches, so padding never shifts a row's positions."""

from __future__ import annotations

import torch


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that start at 0 on each row's first real token (left or right padding alike)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)

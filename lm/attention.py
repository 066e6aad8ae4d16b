"""Per-row attention masks that keep sliding-window models exact in the shared-cache runner.

Transformers counts a sliding window in cache columns: a key is seen when it lies fewer than
``sliding_window`` columns before the query. In :class:`~rlhf_gym.lm.runner.CachedCausalLM` the
columns are a global clock shared by rows that restart at different times, so a row's columns
hold padding and its previous episodes as well as its own tokens, and a window counted in columns
is not the window the row would get in an uncached forward of its own tokens. (A cache built from
the config also drops old columns of sliding layers, whether or not the row still needs them.)

For a model with sliding layers the runner therefore keeps every column (a cache of full layers)
and passes the model explicit 4D masks: query i of a row may see column j iff j holds one of the
row's live tokens, at or before i, and, on a sliding layer, fewer than ``window`` of the row's own
positions before i (the rule of an uncached forward of the row alone). A live column's position
in its row is the count of live columns up to it, so the masks follow from the runner's 2D live
mask alone. Models without sliding layers never come here and keep the runner's 2D-mask path.

Where the cache cannot be made exact this way, :func:`sliding_window_of` refuses the model with
a ValueError that says what to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.cache_utils import get_layer_types_and_kwargs

EXACT_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})
"""Layer types whose attention a per-row 4D mask over a full KV cache reproduces exactly."""

MASKED_ATTENTION = {"eager": True, "sdpa": False}
"""Attention implementations that take a dense 4D mask: whether each adds a float mask."""


@dataclass(frozen=True)
class SlidingWindow:
    """How the per-row masks of a model with sliding-window layers are built.

    Attributes:
        window: how many of its row's tokens a query of a sliding layer sees, its own included.
        mixed: whether full-attention layers are mixed in; the model then takes a dict of masks
            keyed by layer type, else one mask for all its (sliding) layers.
        additive: a float mask to add to the scores (eager attention), else a boolean one (sdpa).
        dtype: the dtype of an additive mask.
    """

    window: int
    mixed: bool
    additive: bool
    dtype: torch.dtype

    def masks(self, live: torch.Tensor, width: int) -> torch.Tensor | dict[str, torch.Tensor]:
        """The ``attention_mask`` argument for a chunk of ``width`` new columns.

        Args:
            live: ``(N, C)`` 1 where a column holds a live token of its row, the chunk's columns
                last.
            width: how many columns the chunk adds (the query length).

        Returns:
            ``(N, 1, width, C)`` masks: one tensor, or a dict by layer type for mixed models.
        """
        live = live.bool()
        positions = live.cumsum(dim=1, dtype=torch.int32) - 1  # a live column's position in its row
        distance = positions[:, -width:, None] - positions[:, None, :]  # (N, width, C)
        causal = live[:, None, :] & (distance >= 0)
        sliding = causal & (distance < self.window)
        if not self.mixed:
            return self._format(sliding)
        return {"full_attention": self._format(causal), "sliding_attention": self._format(sliding)}

    def _format(self, allowed: torch.Tensor) -> torch.Tensor:
        """``(N, q, C)`` allowed pairs as the attention implementation takes them."""
        # A query with no key at all (padding, an idle row) sees every column instead: its output
        # is never read, and this keeps it finite, so no NaN reaches a masked column's keys.
        allowed = (allowed | ~allowed.any(dim=-1, keepdim=True))[:, None]
        if not self.additive:
            return allowed
        blocked = torch.finfo(self.dtype).min
        return torch.zeros(allowed.shape, dtype=self.dtype, device=allowed.device).masked_fill(
            ~allowed, blocked
        )


def sliding_window_of(model: nn.Module) -> SlidingWindow | None:
    """The mask plan of a model with sliding-window layers, or None when it has none.

    Args:
        model: a causal LM (or a trunk) with a Hugging Face ``config``.

    Returns:
        None for a model whose layers all attend fully (the runner's 2D-mask path), else how to
        build its per-row masks.

    Raises:
        ValueError: for a model whose attention a shared cache with per-row masks cannot make
            exact: local layers that count their window inside the model, layer types other than
            full and sliding attention, several window sizes, or a sliding model on an attention
            implementation that takes no dense 4D mask.
    """
    config = model.config.get_text_config(decoder=True)
    name = getattr(config, "model_type", type(model).__name__)
    _refuse_local_layers(config, name)
    layer_types, layer_kwargs = get_layer_types_and_kwargs(config)
    others = sorted(set(layer_types) - EXACT_LAYER_TYPES)
    if others:
        raise ValueError(
            f"{name} has {others} layers; CachedCausalLM shares one KV cache between rows that "
            "restart at different times and is exact only for full and sliding-window attention "
            "layers. Use a model whose layers are all full or sliding attention."
        )
    windows = {
        int(kwargs["sliding_window"])
        for kind, kwargs in zip(layer_types, layer_kwargs, strict=True)
        if kind == "sliding_attention"
    }
    if not windows:
        return None
    if len(windows) > 1:
        raise ValueError(
            f"{name} has sliding layers with different windows {sorted(windows)}; CachedCausalLM "
            "builds one sliding mask. Use a config with one sliding_window."
        )
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in MASKED_ATTENTION:
        raise ValueError(
            f"{name} has a sliding window (sliding_window={min(windows)}), which CachedCausalLM "
            "makes exact per row with dense 4D attention masks, and attn_implementation="
            f"{implementation!r} takes none. Load the model with attn_implementation='sdpa' (or "
            "'eager'), or use a config without a sliding window."
        )
    return SlidingWindow(
        window=windows.pop(),
        mixed="full_attention" in layer_types,
        additive=MASKED_ATTENTION[implementation],
        dtype=_float_dtype(model),
    )


def _refuse_local_layers(config: Any, name: str) -> None:
    """Refuse local layers (GPT-Neo's) whose window the model applies itself, in cache columns."""
    kinds = getattr(config, "attention_layers", None) or []
    local = [layer for layer, kind in enumerate(kinds) if kind == "local"]
    if local:
        raise ValueError(
            f"{name} has local-attention layers {local} (window_size="
            f"{getattr(config, 'window_size', None)}) that count their window in cache columns "
            "inside the model, where no attention mask can correct it, so rows of CachedCausalLM "
            "that restart at different times would see the wrong tokens. Use a config whose "
            "attention_types are all 'global'."
        )


def _float_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 if none)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32

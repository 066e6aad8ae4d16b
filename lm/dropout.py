"""Dropout off in a Hugging Face config, for models that act or score (docs/ppo.md)."""

from __future__ import annotations

from typing import Any


def disable_dropout(config: Any) -> None:
    """Set every dropout probability of a (possibly nested) config to 0."""
    for key, value in list(vars(config).items()):
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key):
            setattr(config, key, 0.0)
        elif hasattr(value, "to_dict") and hasattr(value, "model_type"):
            disable_dropout(value)

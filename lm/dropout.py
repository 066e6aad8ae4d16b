"""Dropout off, for models that act, score or train against a reference (docs/ppo.md)."""

from __future__ import annotations

from typing import Any

from torch import nn


def disable_dropout(config: Any) -> None:
    """Set every dropout probability of a (possibly nested) config to 0."""
    for key, value in list(vars(config).items()):
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key):
            setattr(config, key, 0.0)
        elif hasattr(value, "to_dict") and hasattr(value, "model_type"):
            disable_dropout(value)


def disable_module_dropout(model: nn.Module) -> None:
    """Zero every dropout a built model holds: its modules and float ``*dropout`` attributes.

    A model passed as an object was built with its config's dropout, so setting the config
    afterwards is not enough: train mode would switch the built modules' dropout on, and the
    log-probs trained on would differ from those sampled with.
    """
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for name, value in list(vars(module).items()):
            if "dropout" in name and isinstance(value, float):
                setattr(module, name, 0.0)

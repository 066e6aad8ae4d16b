"""Optional LoRA adapters through peft: the reference is the base weights with adapters off.

With LoRA there is no second copy of the model. The env gets the reference as a
:class:`ReferenceView` (from ``LMActorCriticPolicy.reference_view()``), a module that shares the
policy's weights and runs them with ``disable_adapter()``, passed in place of a reference model.
Since the env needs its reference before the agent exists, a job builds the peft model first
(:func:`apply_lora`), gives the env its view, and hands the same peft model to the policy
(``policy_kwargs={"model": base_path, "lora": peft_model}``), as ``train-ppo --lora-r`` does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def apply_lora(model: nn.Module, lora: Any) -> nn.Module:
    """Wrap ``model`` with LoRA adapters; ``lora`` is a ``peft.LoraConfig`` or its kwargs.

    A string is read as a directory of saved adapters (from :meth:`save_pretrained`).
    """
    try:
        import peft
    except ImportError as err:  # pragma: no cover - peft is in the test extras
        raise ImportError("LoRA needs peft: pip install 'rlhf-gym[lora]'.") from err
    if isinstance(lora, str):
        return peft.PeftModel.from_pretrained(model, lora, is_trainable=True)
    config = lora if isinstance(lora, peft.LoraConfig) else peft.LoraConfig(**lora)
    if config.task_type is None:
        config.task_type = "CAUSAL_LM"
    return peft.get_peft_model(model, config)


def has_adapters(model: nn.Module) -> bool:
    """Whether ``model`` is a peft model with adapters."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


class ReferenceView(nn.Module):
    """The LoRA policy's base weights as a frozen reference LM, without copying them.

    Every forward runs inside ``disable_adapter()`` and ``no_grad``. ``requires_grad_`` and
    ``train`` are no-ops so an env that freezes its reference cannot freeze the adapters.

    Args:
        peft_model: the policy's peft model.
    """

    def __init__(self, peft_model: nn.Module) -> None:
        super().__init__()
        if not has_adapters(peft_model):
            raise ValueError("ReferenceView needs a peft model with LoRA adapters.")
        self.peft_model = peft_model
        self.config = peft_model.config

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The base model's forward with adapters disabled."""
        with torch.no_grad(), self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)

    def requires_grad_(self, requires_grad: bool = True) -> ReferenceView:
        """No-op: base weights are frozen by peft already; adapters must stay trainable."""
        return self

    def train(self, mode: bool = True) -> ReferenceView:
        """No-op: the shared model stays in eval mode."""
        return self

    @property
    def generation_config(self) -> Any:
        """The shared model's generation config (its stop ids end the env's episodes too)."""
        return getattr(self.peft_model, "generation_config", None)

    def get_output_embeddings(self) -> nn.Module:
        """The shared output embeddings (for vocabulary checks)."""
        return self.peft_model.get_output_embeddings()

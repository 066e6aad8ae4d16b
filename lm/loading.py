"""Loading causal LMs and tokenizers from a hub name, a folder or an object already built.

Every part that runs a policy or a reference loads it here, so each gets the same treatment:
dropout off in the config (log-probs at act time must equal those at update time), eval mode,
and the width of its logits read from the output embeddings.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from rlhf_gym.lm.dropout import disable_dropout
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

ModelLike = str | os.PathLike | PreTrainedModel


def load_causal_lm(
    model: ModelLike, device: torch.device | str | None = None, **kwargs: Any
) -> PreTrainedModel:
    """A causal LM in eval mode with dropout off, moved to ``device`` when one is given.

    Args:
        model: a hub name or folder for ``AutoModelForCausalLM.from_pretrained``, or a model.
        device: where to put it; None leaves it where it is.
        **kwargs: more ``from_pretrained`` arguments (ignored for a model object).
    """
    if isinstance(model, nn.Module):
        disable_dropout(model.config)
    else:
        config = AutoConfig.from_pretrained(model)
        disable_dropout(config)
        model = AutoModelForCausalLM.from_pretrained(model, config=config, **kwargs)
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` itself, or ``AutoTokenizer.from_pretrained`` of a name or folder."""
    if isinstance(tokenizer, str | os.PathLike):
        return AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer


def vocab_size_of(model: nn.Module) -> int:
    """The number of logits the model produces per position (its output embedding rows)."""
    head = model.get_output_embeddings()
    if head is not None and hasattr(head, "weight"):
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)

"""Loading causal LMs and tokenizers from a hub name, a folder or an object already built.

Every part that runs a policy or a reference loads it here, so each gets the same treatment:
dropout off in the config (log-probs at act time must equal those at update time), eval mode,
the width of its logits read from the output embeddings, and an explicit precision. Transformers
5 loads a checkpoint in the dtype it was stored in, so a bf16 checkpoint arrives in bf16 unless
``dtype`` says otherwise: trainable weights are asked for in float32, frozen ones in the run's
``--dtype``. A folder of LoRA adapters (``adapter_config.json``, as a LoRA run saves its policy)
loads as its base model with the adapters merged in.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from rlhf_gym.lm.dropout import disable_dropout, disable_module_dropout
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
)

ModelLike = str | os.PathLike | PreTrainedModel
#: The ``--dtype`` choices.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ADAPTER_CONFIG = "adapter_config.json"


def torch_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    """``"bfloat16"`` -> ``torch.bfloat16``; a dtype or None is returned as it is.

    Raises:
        ValueError: for a name that is not one of :data:`DTYPES`.
    """
    if name is None or isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}.")
    return DTYPES[name]


def load_causal_lm(
    model: ModelLike,
    device: torch.device | str | None = None,
    dtype: str | torch.dtype | None = None,
    **kwargs: Any,
) -> PreTrainedModel:
    """A causal LM in eval mode with dropout off, moved to ``device`` when one is given.

    Args:
        model: a hub name or folder for ``AutoModelForCausalLM.from_pretrained``, a folder of
            LoRA adapters (loaded onto their base and merged), or a model.
        device: where to put it; None leaves it where it is.
        dtype: the precision of its weights (``torch.float32``, ``"bfloat16"``, ...); None keeps
            the checkpoint's own (or the object's).
        **kwargs: more ``from_pretrained`` arguments (ignored for a model object).
    """
    dtype = torch_dtype(dtype)
    if isinstance(model, nn.Module):
        disable_dropout(model.config)
        disable_module_dropout(model)  # built already: its modules keep the config's old rates
        if dtype is not None:
            model = model.to(dtype)
    elif is_adapter_folder(model):
        model = load_merged_adapters(model, dtype, **kwargs)
    else:
        config = AutoConfig.from_pretrained(model)
        disable_dropout(config)
        if dtype is not None:
            kwargs["dtype"] = dtype
        model = AutoModelForCausalLM.from_pretrained(model, config=config, **kwargs)
    if device is not None:
        model = model.to(device)
    return model.eval()


def is_adapter_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a local folder of peft adapters without full weights of its own."""
    folder = Path(path)
    return (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file()


def load_merged_adapters(
    path: str | os.PathLike, dtype: torch.dtype | None, **kwargs: Any
) -> PreTrainedModel:
    """The base model named in ``path``'s adapter config, with the adapters merged into it.

    Raises:
        ImportError: without peft.
        ValueError: when the adapter config names no base model.
    """
    try:
        import peft
    except ImportError as err:  # pragma: no cover - peft is in the test extras
        raise ImportError(
            f"{path} holds LoRA adapters; loading them needs peft: pip install 'rlhf-gym[lora]'."
        ) from err
    model = load_causal_lm(adapter_base(path), dtype=dtype, **kwargs)
    return peft.PeftModel.from_pretrained(model, os.fspath(path)).merge_and_unload()


def adapter_base(path: str | os.PathLike) -> str:
    """The base model a folder of adapters was trained on (its ``base_model_name_or_path``).

    Raises:
        ValueError: when the adapter config names none.
    """
    settings = json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = settings.get("base_model_name_or_path")
    if not base:
        raise ValueError(
            f"{path}/{ADAPTER_CONFIG} names no base_model_name_or_path; load the base model and "
            "apply the adapters with peft.PeftModel.from_pretrained(base, path)."
        )
    return str(base)


def load_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` itself, or ``AutoTokenizer.from_pretrained`` of a name or folder."""
    if isinstance(tokenizer, str | os.PathLike):
        return AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer


def has_tokenizer(path: str | os.PathLike) -> bool:
    """Whether a local folder holds a saved tokenizer (a hub name is assumed to)."""
    folder = Path(path)
    if not folder.is_dir():
        return not folder.exists()
    return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()


def max_positions(model: ModelLike) -> int | None:
    """The longest sequence the model's config allows (None when it states no bound)."""
    if isinstance(model, nn.Module):
        config = model.config
    else:
        name = adapter_base(model) if is_adapter_folder(model) else model
        config = AutoConfig.from_pretrained(name)
    text = config.get_text_config()
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def vocab_size_of(model: nn.Module) -> int:
    """The number of logits the model produces per position (its output embedding rows)."""
    head = model.get_output_embeddings()
    if head is not None and hasattr(head, "weight"):
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


def generation_config(model: nn.Module, tokenizer: Any) -> GenerationConfig:
    """The model's generation config, stopping on the tokenizer's EOS too, padding with its pad.

    ``generate`` on the saved folder then ends where the env's episodes end.
    """
    config = copy.deepcopy(getattr(model, "generation_config", None) or GenerationConfig())
    stops = config.eos_token_id
    stops = [] if stops is None else list(stops) if isinstance(stops, list | tuple) else [stops]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in stops:
        stops.append(int(tokenizer.eos_token_id))
    config.eos_token_id = stops[0] if len(stops) == 1 else stops
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = int(tokenizer.pad_token_id)
    return config

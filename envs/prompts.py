"""Prompt sources and the prompt-length policy.

Prompts come from a list of strings, a Hugging Face dataset column, the toy world, or a file
(:func:`read_prompts`). Every prompt is tokenized once, at construction.

**Long prompts.** A prompt with more than ``max_prompt_tokens`` tokens is *left-truncated*: its
last ``max_prompt_tokens`` tokens are kept (the end of a prompt is what the completion follows),
and one warning per env says how many prompts were cut. Pass ``prompt_truncation="error"`` to
refuse such prompts instead.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from transformers import PreTrainedTokenizerBase

PromptTruncation = Literal["left", "error"]


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a file: JSONL (the ``"prompt"`` field of each line) or text (one per line).

    Blank lines are skipped and surrounding whitespace is stripped.
    """
    path = Path(path)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if path.suffix == ".jsonl":
        return [str(json.loads(line)["prompt"]) for line in lines]
    return lines


def load_prompts(source: object, column: str = "prompt") -> list[str]:
    """Turn a prompt source into a list of strings.

    Args:
        source: a sequence of strings; a ``datasets.Dataset`` (its ``column`` is read); or any
            object with a ``train_prompts`` attribute (the toy world).
        column: the dataset column holding the prompts.

    Raises:
        ValueError: when the source is empty or holds something other than strings.
    """
    if hasattr(source, "column_names"):
        if column not in source.column_names:  # type: ignore[attr-defined]
            raise ValueError(
                f"the dataset has no column {column!r}; its columns are "
                f"{source.column_names}. Pass prompt_column=<name>."  # type: ignore[attr-defined]
            )
        prompts = list(source[column])  # type: ignore[index]
    elif hasattr(source, "train_prompts"):
        prompts = list(source.train_prompts)  # type: ignore[attr-defined]
    elif isinstance(source, str):
        prompts = [source]
    elif isinstance(source, Sequence):
        prompts = list(source)
    else:
        raise TypeError(
            f"prompts must be a list of strings, a datasets.Dataset or the toy world, "
            f"got {type(source).__name__}."
        )
    if not prompts:
        raise ValueError("the prompt source is empty; the env needs at least one prompt.")
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad:
        raise ValueError(f"prompts must be strings; found {type(bad[0]).__name__}: {bad[0]!r}.")
    return prompts


def tokenize_prompts(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_prompt_tokens: int,
    truncation: PromptTruncation = "left",
) -> list[list[int]]:
    """Tokenize every prompt and apply the length policy (see the module docstring).

    Raises:
        ValueError: for an empty tokenization, or a too long prompt with ``truncation="error"``.
    """
    if truncation not in ("left", "error"):
        raise ValueError(f"prompt_truncation must be 'left' or 'error', got {truncation!r}.")
    encoded = tokenizer(list(prompts))["input_ids"]
    out: list[list[int]] = []
    too_long = 0
    for text, ids in zip(prompts, encoded, strict=True):
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError(f"prompt {text!r} tokenizes to nothing; every prompt needs a token.")
        if len(ids) > max_prompt_tokens:
            if truncation == "error":
                raise ValueError(
                    f"prompt {text[:60]!r} has {len(ids)} tokens > max_prompt_tokens="
                    f"{max_prompt_tokens}; raise max_prompt_tokens or use "
                    "prompt_truncation='left' to keep its last tokens."
                )
            too_long += 1
            ids = ids[-max_prompt_tokens:]
        out.append(ids)
    if too_long:
        warnings.warn(
            f"{too_long} of {len(out)} prompts are longer than max_prompt_tokens="
            f"{max_prompt_tokens}; keeping their last {max_prompt_tokens} tokens "
            "(prompt_truncation='left').",
            UserWarning,
            stacklevel=3,
        )
    return out

"""Prompt sources, the one prompt formatting rule, and the prompt-length policy.

Prompts come from a list of strings, a Hugging Face dataset column, the toy world, or a file,
folder or hub dataset id (:func:`read_prompts`). :func:`~rlhf_gym.envs.data_sources.read_rows`
is the one reader of data sources, shared with the preference loader. Every prompt is tokenized
once, at construction, with :func:`rlhf_gym.lm.encoding.encode_prompts` (BOS as the tokenizer
adds it, never doubled).

**Prompt text.** :func:`format_prompt` is the single rule that turns a prompt into text, for RL
prompts and preference data alike: a string is used as it is; a list of ``{"role", "content"}``
messages is rendered with the tokenizer's chat template and ``add_generation_prompt=True``.

**Long prompts.** A prompt with more than ``max_prompt_tokens`` tokens is *left-truncated*: its
last ``max_prompt_tokens`` tokens are kept (the end of a prompt is what the completion follows),
and one warning per env says how many prompts were cut. Pass ``prompt_truncation="error"`` to
refuse such prompts instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from rlhf_gym.envs.data_sources import (
    TABLE_TYPES,
    DataFormatError,
    check_no_split,
    read_rows,
)
from rlhf_gym.lm.encoding import encode_prompts
from transformers import PreTrainedTokenizerBase

PromptTruncation = Literal["left", "error"]
Messages = list[dict[str, Any]]

def is_messages(value: Any) -> bool:
    """Whether ``value`` is a non-empty list of ``{"role", "content"}`` messages."""
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value)
    )


def format_prompt(
    prompt: str | Sequence[Mapping[str, Any]], tokenizer: PreTrainedTokenizerBase | None = None
) -> str:
    """The exact prompt text a policy continues and a reward model reads.

    The rule: a string is used as it is (no template, no stripping); a list of
    ``{"role", "content"}`` messages is rendered with ``tokenizer.apply_chat_template(messages,
    tokenize=False, add_generation_prompt=True)``, so the text ends where the assistant's reply
    begins.

    Args:
        prompt: the prompt text, or the conversation so far (ending with a non-assistant turn).
        tokenizer: needed only for message lists; it must have a chat template.

    Raises:
        DataFormatError: for anything else than a string or messages, messages that end with an
            assistant reply, or messages without a tokenizer that has a chat template.
    """
    if isinstance(prompt, str):
        return prompt
    if not is_messages(prompt):
        raise DataFormatError(
            "a prompt must be a string or a non-empty list of {'role', 'content'} messages, "
            f"got {type(prompt).__name__}: {str(prompt)[:80]!r}."
        )
    if prompt[-1]["role"] == "assistant":
        raise DataFormatError(
            "the prompt messages end with an assistant reply, so nothing is left to generate; "
            "pass the messages before that reply."
        )
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise DataFormatError(
            "message-list prompts are rendered with the tokenizer's chat template, and "
            + ("no tokenizer was given" if tokenizer is None else "this tokenizer has none")
            + ": pass tokenizer= a tokenizer with a chat template, set tokenizer.chat_template "
            "(a Jinja string), or give the prompts as text."
        )
    return tokenizer.apply_chat_template(
        [dict(m) for m in prompt], tokenize=False, add_generation_prompt=True
    )


def read_prompts(
    source: Any,
    *,
    split: str = "train",
    column: str = "prompt",
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> list[str]:
    """RL prompts from a file, a folder, a hub dataset id or a dataset.

    A file whose suffix is not ``.jsonl``/``.json``/``.csv``/``.parquet`` is text: one prompt per
    line, surrounding whitespace stripped, blank lines skipped. Every other source (see
    :func:`read_rows`) is read as rows whose ``column`` holds strings, used exactly (multi-line
    ones too), or message lists, rendered by :func:`format_prompt`. A conversation that ends
    with an assistant reply (a ``messages`` or conversational ``chosen`` column) gives the turns
    before that reply.

    Args:
        source: a path, a hub dataset id, a ``datasets.Dataset`` or an iterable of dicts.
        split: the split of a DatasetDict folder, a data-files folder or a hub dataset.
        column: the column that holds the prompts.
        tokenizer: renders message-list prompts with its chat template.

    Raises:
        DataFormatError: an unreadable source, a missing column (with a hint at the right
            ``column=``), or a row whose prompt is empty or not a string or messages.
    """
    if isinstance(source, str | os.PathLike) and _is_text_file(os.fspath(source)):
        check_no_split(os.fspath(source), split)
        lines = Path(source).expanduser().read_text(encoding="utf-8").splitlines()
        prompts = [line.strip() for line in lines if line.strip()]
    else:
        values = _column_values(read_rows(source, split=split), column)
        prompts = [
            _row_prompt(value, index, column, tokenizer) for index, value in enumerate(values)
        ]
    if not prompts:
        raise DataFormatError(f"{source!r} holds no prompts; the env needs at least one.")
    return prompts


def _is_text_file(path: str) -> bool:
    path = os.path.expanduser(path)
    return os.path.isfile(path) and Path(path).suffix.lower() not in TABLE_TYPES


def _column_values(rows: Iterable[Mapping[str, Any]], column: str) -> list[Any]:
    """The values of ``column``, read as a column where the rows are a Dataset."""
    names = getattr(rows, "column_names", None)
    if names is None:
        rows = list(rows)
        bad = next((row for row in rows if not isinstance(row, Mapping)), None)
        if bad is not None:
            raise DataFormatError(f"rows must be dicts, got {type(bad).__name__}: {bad!r:.80}.")
        names = list(dict.fromkeys(key for row in rows for key in row))
    if column not in names:
        raise _missing_column(column, names, rows[0] if len(rows) else {})  # type: ignore[arg-type]
    if hasattr(rows, "column_names"):
        return list(rows[column])  # type: ignore[index]
    return [row.get(column) for row in rows]


def _missing_column(column: str, names: list[str], first: Mapping[str, Any]) -> DataFormatError:
    """The error for a missing prompt column, pointing at the column or format that would work."""
    message = f"there is no column {column!r} to read prompts from; the columns are {names}."
    conversations = [name for name in names if is_messages(first.get(name))]
    if "prompt" in names:
        message += " Pass column='prompt'."
    elif conversations:
        message += (
            f" Column {conversations[0]!r} holds conversations: pass column="
            f"{conversations[0]!r} to use each one, up to its final assistant reply, as the "
            "prompt (and tokenizer= for the chat template)."
        )
    elif "chosen" in names and "rejected" in names:
        message += (
            " These are implicit-prompt (HH-style) preference rows: the prompt is inside the "
            "'chosen'/'rejected' texts. Give the rows a prompt column (the explicit format "
            "prompt/chosen/rejected; load_preferences(source).pairs finds each pair's .prompt) "
            "or pass column=<name> of a column that holds prompts."
        )
    else:
        message += " Pass column=<name> of the column that holds the prompts."
    return DataFormatError(message)


def _row_prompt(
    value: Any, index: int, column: str, tokenizer: PreTrainedTokenizerBase | None
) -> str:
    """One row's prompt text; a conversation's final assistant reply is not part of it."""
    if isinstance(value, str) and not value.strip():
        raise DataFormatError(f"row {index}: the prompt in column {column!r} is empty.")
    if is_messages(value) and value[-1]["role"] == "assistant":
        value = value[:-1]
    try:
        return format_prompt(value, tokenizer)
    except DataFormatError as err:
        raise DataFormatError(f"row {index} of column {column!r}: {err}") from err


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
        hint = (
            " Message-list prompts need a chat template: turn them into text first with "
            "read_prompts(source, tokenizer=...) or format_prompt(prompt, tokenizer)."
            if is_messages(bad[0])
            else ""
        )
        raise ValueError(
            f"prompts must be strings; found {type(bad[0]).__name__}: {bad[0]!r}.{hint}"
        )
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
    encoded = encode_prompts(tokenizer, prompts)
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

"""Preference data: load and validate (prompt, chosen, rejected) rows.

Accepted sources (read by :func:`rlhf_gym.envs.prompts.read_rows`): a JSONL, JSON, CSV or Parquet
file; a ``save_to_disk`` folder (a ``DatasetDict`` one gives its ``split``); a folder of data files
or a hub dataset id (``datasets.load_dataset(source, split=split)``, with the user's hub login); a
``datasets.Dataset``, or any iterable of dicts. Accepted row shapes (``docs/data_formats.md``):

* **explicit**: ``prompt``, ``chosen``, ``rejected`` strings (optional numeric ``margin``);
* **implicit prompt** (HH style): ``chosen`` and ``rejected`` hold the whole text and there is
  no ``prompt`` column. The prompt is their longest common prefix, cut back to the last
  whitespace so that no word is split; the completions are what follows it;
* **conversational**: ``chosen``/``rejected`` are lists of ``{"role", "content"}`` messages.
  Their final message is the reply; the messages before it, if any, are the prompt. ``prompt``
  may be absent (then those messages must exist), a message list or, in the **H4** format
  (UltraFeedback-binarized), a string, read as one user turn. Where the lists hold the prompt
  turns too, they must agree with ``prompt``. The prompt text is
  :func:`~rlhf_gym.envs.prompts.format_prompt` of the prompt messages (the chat template with
  ``add_generation_prompt=True``); a completion is the rest of the templated conversation.

Every bad row raises a :class:`PreferenceDataError` naming the row and the problem, or, with
``skip_invalid=True``, is skipped, counted in :class:`PreferenceData` ``.skipped`` and logged.
Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlhf_gym.envs.data_sources import DataFormatError, read_rows
from rlhf_gym.envs.prompts import format_prompt, is_messages

logger = logging.getLogger(__name__)


class PreferenceDataError(DataFormatError):
    """A preference source or row (or the tokenizer meant to encode it) is unusable."""


@dataclass(frozen=True)
class PreferencePair:
    """One validated comparison: ``chosen`` was preferred to ``rejected`` after ``prompt``."""

    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0


@dataclass
class PreferenceData:
    """Validated pairs plus an account of what was skipped (row index -> reason)."""

    pairs: list[PreferencePair]
    skipped: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)


def _read_rows(source: Any, split: str) -> Iterable[Mapping[str, Any]]:
    """:func:`read_rows`, its errors raised as :class:`PreferenceDataError`."""
    try:
        return read_rows(source, split=split)
    except PreferenceDataError:
        raise
    except DataFormatError as err:
        raise PreferenceDataError(str(err)) from err


def _common_prefix(a: str, b: str) -> str:
    """Longest common prefix of two texts, cut back to the last whitespace (no split words)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if a == b:
        return a
    cut = max(a.rfind(" ", 0, n), a.rfind("\n", 0, n))
    return a[: cut + 1] if cut >= 0 else ""


def _messages(messages: Iterable[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    """(role, content) pairs: messages compared without the keys Arrow fills with None."""
    return [(m["role"], m["content"]) for m in messages]


def _split_reply(messages: Any, key: str) -> tuple[list, list]:
    """(the messages before the final reply, [the final reply])."""
    if not is_messages(messages):
        raise PreferenceDataError(
            f"{key!r} must be a non-empty list of {{'role', 'content'}} messages when either "
            f"completion is a list, got {str(messages)[:80]!r}."
        )
    return list(messages[:-1]), list(messages[-1:])


def _check_prompt_agrees(prompt: Any, context: list[Mapping[str, Any]]) -> None:
    """A ``prompt`` column must say what the prompt turns inside ``chosen`` say."""
    if isinstance(prompt, str):
        users = [m["content"] for m in context if m["role"] == "user"]
        agrees = bool(users) and str(users[-1]).strip() == prompt.strip()
        shown = users[-1] if users else "(no user turn)"
    else:
        agrees = _messages(prompt) == _messages(context)
        shown = _messages(context)
    if not agrees:
        raise PreferenceDataError(
            f"'prompt' {str(prompt)[:80]!r} disagrees with the prompt turns in 'chosen' "
            f"({str(shown)[:80]!r}). Fix the row, or drop the 'prompt' column so that the "
            "message lists alone define the prompt."
        )


def _conversation_parts(row: Mapping[str, Any]) -> tuple[list, list, list]:
    """(prompt messages, chosen reply, rejected reply) of a conversational row."""
    context, chosen = _split_reply(row["chosen"], "chosen")
    rejected_context, rejected = _split_reply(row["rejected"], "rejected")
    if _messages(context) != _messages(rejected_context):
        raise PreferenceDataError(
            "chosen and rejected must share all messages but the last (the reply)."
        )
    prompt = row.get("prompt")
    if prompt is None:
        if not context:
            raise PreferenceDataError(
                "no prompt: without a prompt column, chosen and rejected must hold the prompt "
                "turns before their final reply."
            )
        return context, chosen, rejected
    if not isinstance(prompt, str) and not is_messages(prompt):
        raise PreferenceDataError(
            "'prompt' must be a string or a list of {'role', 'content'} messages like chosen."
        )
    if context:
        _check_prompt_agrees(prompt, context)
        return context, chosen, rejected
    prompt_messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return list(prompt_messages), chosen, rejected


def _render_conversation(row: Mapping[str, Any], tokenizer: Any) -> tuple[str, str, str]:
    """Turn message lists into (prompt, chosen, rejected) text with the chat template."""
    prompt, *replies = _conversation_parts(row)
    try:
        prompt_text = format_prompt(prompt, tokenizer)
    except DataFormatError as err:
        raise PreferenceDataError(f"conversational rows: {err}") from err
    texts = []
    for reply in replies:
        full = tokenizer.apply_chat_template([dict(m) for m in [*prompt, *reply]], tokenize=False)
        if not full.startswith(prompt_text):
            # a template whose generation prompt differs from its assistant header
            prompt_text = _common_prefix(full, prompt_text)
        texts.append(full)
    return prompt_text, texts[0][len(prompt_text) :], texts[1][len(prompt_text) :]


def _parse_margin(row: Mapping[str, Any]) -> float:
    margin = row.get("margin", 0.0)
    if margin is None:
        return 0.0
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not math.isfinite(margin):
        raise PreferenceDataError(f"'margin' must be a finite number, got {margin!r}.")
    return float(margin)


def parse_row(row: Mapping[str, Any], tokenizer: Any = None) -> PreferencePair:
    """Validate one row and return it as a :class:`PreferencePair`.

    Raises:
        PreferenceDataError: naming the problem (missing key, non-string, empty, identical pair).
    """
    if not isinstance(row, Mapping):
        raise PreferenceDataError(f"a row must be a dict, got {type(row).__name__}.")
    for key in ("chosen", "rejected"):
        if key not in row or row[key] is None:
            raise PreferenceDataError(f"missing key {key!r} (found keys: {sorted(row)}).")
    if isinstance(row["chosen"], list) or isinstance(row["rejected"], list):
        prompt, chosen, rejected = _render_conversation(row, tokenizer)
    else:
        for key in ("prompt", "chosen", "rejected"):
            value = row.get(key, "")
            if not isinstance(value, str):
                raise PreferenceDataError(f"{key!r} must be a string, got {type(value).__name__}.")
        chosen, rejected = row["chosen"], row["rejected"]
        if row.get("prompt") is not None:
            prompt = row["prompt"]
        elif chosen == rejected:
            prompt = ""
        else:
            prompt = _common_prefix(chosen, rejected)
            chosen, rejected = chosen[len(prompt) :], rejected[len(prompt) :]
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if not value.strip():
            raise PreferenceDataError(f"{key!r} completion is empty.")
    if chosen == rejected:
        raise PreferenceDataError(
            "chosen and rejected are identical, so the pair carries no preference."
        )
    return PreferencePair(prompt, chosen, rejected, _parse_margin(row))


def load_preferences(
    source: Any, *, split: str = "train", tokenizer: Any = None, skip_invalid: bool = False
) -> PreferenceData:
    """Load and validate preference rows.

    Args:
        source: a JSONL/JSON/CSV/Parquet file, a ``save_to_disk`` folder, a folder of data
            files, a hub dataset id, a ``datasets.Dataset`` or an iterable of dicts.
        split: the split of a DatasetDict folder, a data-files folder or a hub dataset.
        tokenizer: needed only for conversational rows (its chat template renders them).
        skip_invalid: skip bad rows (counted in ``.skipped`` and logged) instead of raising.

    Raises:
        PreferenceDataError: for a source that cannot be read, on the first bad row
            ("row 12: ...") unless ``skip_invalid``, or when no valid row is left.
    """
    pairs: list[PreferencePair] = []
    skipped: dict[int, str] = {}
    for index, row in enumerate(_read_rows(source, split)):
        try:
            pairs.append(parse_row(row, tokenizer))
        except PreferenceDataError as err:
            if not skip_invalid:
                raise PreferenceDataError(
                    f"row {index}: {err} (pass skip_invalid=True to skip bad rows)"
                ) from err
            skipped[index] = str(err)
    if skipped:
        first = next(iter(skipped.items()))
        logger.warning(
            "skipped %d invalid preference row(s); first: row %d: %s", len(skipped), *first
        )
    if not pairs:
        raise PreferenceDataError(
            f"no valid preference rows in {source!r} ({len(skipped)} skipped)."
        )
    return PreferenceData(pairs, skipped)

"""Preference data: load and validate (prompt, chosen, rejected) rows.

Accepted sources: a JSONL file, a local file or folder that ``datasets`` can read (json, csv,
parquet, a ``save_to_disk`` folder), a ``datasets.Dataset``, or any iterable of dicts. Accepted
row shapes:

* **explicit**: ``prompt``, ``chosen``, ``rejected`` strings (optional numeric ``margin``);
* **implicit prompt** (TRL style): ``chosen`` and ``rejected`` hold the whole text and there is
  no ``prompt`` column. The prompt is their longest common prefix, cut back to the last
  whitespace so that no word is split; the completions are what follows it;
* **conversational**: ``prompt``/``chosen``/``rejected`` are lists of ``{"role", "content"}``
  messages (``prompt`` may be absent: then every message but the last is the prompt). They are
  rendered to text with the tokenizer's chat template.

Every bad row raises a :class:`PreferenceDataError` naming the row and the problem, or, with
``skip_invalid=True``, is skipped, counted in :class:`PreferenceData` ``.skipped`` and logged.
Nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class PreferenceDataError(ValueError):
    """A preference row (or the tokenizer meant to encode it) is unusable."""


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


def _read_rows(source: Any) -> Iterable[Mapping[str, Any]]:
    """Rows of a path (JSONL or anything ``datasets`` reads), a Dataset, or an iterable of dicts."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if path.endswith(".jsonl") and os.path.isfile(path):
            return _read_jsonl(path)
        import datasets

        if os.path.isdir(path):
            return datasets.load_from_disk(path)
        kind = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}
        ext = path.rsplit(".", 1)[-1]
        if ext not in kind:
            raise PreferenceDataError(
                f"{path}: unknown file type .{ext}; use jsonl, json, csv or parquet."
            )
        return datasets.load_dataset(kind[ext], data_files=path, split="train")
    return source


def _read_jsonl(path: str) -> list[Mapping[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise PreferenceDataError(
                    f"{path} line {number + 1}: not valid JSON ({err})."
                ) from err
    return rows


def _common_prefix(a: str, b: str) -> str:
    """Longest common prefix of two texts, cut back to the last whitespace (no split words)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if a == b:
        return a
    cut = max(a.rfind(" ", 0, n), a.rfind("\n", 0, n))
    return a[: cut + 1] if cut >= 0 else ""


def _is_conversation(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value)


def _render_conversation(row: Mapping[str, Any], tokenizer: Any) -> tuple[str, str, str]:
    """Turn message lists into (prompt, chosen, rejected) text with the chat template."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise PreferenceDataError(
            "conversational rows need a tokenizer with a chat template; this tokenizer has none. "
            "Set tokenizer.chat_template (a Jinja string) or use prompt/chosen/rejected text."
        )
    chosen, rejected = row["chosen"], row["rejected"]
    prompt = row.get("prompt")
    if prompt is None:
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1]:
            raise PreferenceDataError(
                "without a prompt column, chosen and rejected must share all messages but the last."
            )
        prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
    if not _is_conversation(prompt):
        raise PreferenceDataError(
            "'prompt' must be a list of {'role', 'content'} messages like chosen."
        )
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    texts = []
    for reply in (chosen, rejected):
        full = tokenizer.apply_chat_template(list(prompt) + list(reply), tokenize=False)
        if not full.startswith(prompt_text):
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
    if _is_conversation(row["chosen"]) and _is_conversation(row["rejected"]):
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
    source: Any, *, tokenizer: Any = None, skip_invalid: bool = False
) -> PreferenceData:
    """Load and validate preference rows.

    Args:
        source: JSONL/json/csv/parquet path, a ``save_to_disk`` folder, a ``datasets.Dataset``
            or an iterable of dicts.
        tokenizer: needed only for conversational rows (its chat template renders them).
        skip_invalid: skip bad rows (counted in ``.skipped`` and logged) instead of raising.

    Raises:
        PreferenceDataError: on the first bad row ("row 12: ...") unless ``skip_invalid``, or
            when no valid row is left.
    """
    pairs: list[PreferencePair] = []
    skipped: dict[int, str] = {}
    for index, row in enumerate(_read_rows(source)):
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

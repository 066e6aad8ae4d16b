"""The one reader of data sources, shared by RL prompts and preference data.

A source is a local file (JSONL read line by line; JSON, CSV and Parquet through ``datasets``),
a ``save_to_disk`` folder, a folder of data files or a hub dataset id (through
``datasets.load_dataset``, so the user's own hub login works), a ``datasets.Dataset`` or
``DatasetDict``, or any iterable of dicts. ``docs/data_formats.md`` lists what is accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Local file types read as tables (suffix -> ``datasets`` builder); JSONL is read line by line.
TABLE_TYPES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
SOURCES_HELP = (
    "a .jsonl/.json/.csv/.parquet file, a save_to_disk folder, a folder of data files "
    "or a hub dataset id"
)


class DataFormatError(ValueError):
    """A data source, a row in it, or a prompt does not have an accepted format."""


def read_rows(source: Any, *, split: str = "train") -> Iterable[Mapping[str, Any]]:
    """The rows of a data source, as dicts.

    Args:
        source: a ``.jsonl`` file (read line by line), a ``.json``/``.csv``/``.parquet`` file; a
            ``save_to_disk`` folder; any other folder, or a string that is no local path, goes
            to ``datasets.load_dataset(source, split=split)`` (a folder of data files, or a hub
            dataset id read with the user's own hub login); a ``datasets.Dataset`` or
            ``DatasetDict`` or any iterable of dicts is used as it is.
        split: the split to read where the source has several (DatasetDict, folder, hub id).

    Raises:
        DataFormatError: naming the source and what is accepted, when it cannot be read.
    """
    if not isinstance(source, str | os.PathLike):
        if isinstance(source, Mapping) and all(hasattr(v, "column_names") for v in source.values()):
            return _select_split(source, split, "the DatasetDict")
        return source
    path = os.path.expanduser(os.fspath(source))
    if os.path.isfile(path):
        return _read_file(path, split)
    if os.path.isdir(path) and _is_saved_dataset(path):
        return _select_split(_datasets().load_from_disk(path), split, path)
    if not os.path.isdir(path) and _looks_local(path):
        raise DataFormatError(f"{path}: no such file or folder. Accepted: {SOURCES_HELP}.")
    return _load_dataset(path, split)


def _looks_local(path: str) -> bool:
    """A path that cannot be a hub id ("name" or "org/name"): report it missing, skip the hub."""
    suffix = Path(path).suffix.lower()
    return (
        path.startswith(("/", "./", "../", "~"))
        or path.count("/") > 1
        or suffix in TABLE_TYPES
        or suffix == ".txt"
    )


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as err:
        raise DataFormatError(
            "reading this source needs the datasets package: pip install 'rlhf-gym[datasets]' "
            "(JSONL and text files work without it)."
        ) from err
    return datasets


def _is_saved_dataset(path: str) -> bool:
    """Whether ``path`` was written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return any(os.path.isfile(os.path.join(path, f)) for f in ("state.json", "dataset_dict.json"))


def _read_file(path: str, split: str) -> Iterable[Mapping[str, Any]]:
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_TYPES:
        raise DataFormatError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r}; accepted: {SOURCES_HELP}."
        )
    check_no_split(path, split)
    if suffix == ".jsonl":
        return read_jsonl(path)
    datasets = _datasets()
    try:
        return datasets.load_dataset(TABLE_TYPES[suffix], data_files=path, split="train")
    except Exception as err:  # any reader failure: say which file, keep the cause
        raise DataFormatError(f"{path}: datasets could not read it ({err}).") from err


def check_no_split(where: str, split: str) -> None:
    """A single file or Dataset has no splits: refuse a split that would be silently ignored."""
    if split != "train":
        raise DataFormatError(
            f"{where} holds a single table with no splits, so split={split!r} cannot be chosen; "
            "leave split at its default, or pass a folder or hub id that has this split."
        )


def _select_split(data: Any, split: str, where: str) -> Any:
    """The ``split`` of a DatasetDict (an error listing the splits if absent), else ``data``."""
    if not isinstance(data, Mapping):
        check_no_split(where, split)
        return data
    if split not in data:
        raise DataFormatError(
            f"{where} holds the splits {sorted(data)}, not {split!r}; pass split=<one of them>."
        )
    return data[split]


def _load_dataset(path: str, split: str) -> Any:
    """``datasets.load_dataset(path, split=split)``: a folder of data files or a hub id."""
    datasets = _datasets()
    try:
        return datasets.load_dataset(path, split=split)
    except Exception as err:  # hub, network and format failures alike: wrap with the fix
        what = "a folder but no save_to_disk folder" if os.path.isdir(path) else "no local path"
        cause = str(err).rstrip(".")
        raise DataFormatError(
            f"{path!r} is {what}, and datasets.load_dataset({path!r}, split={split!r}) could "
            f"not load it: {cause}. Accepted: {SOURCES_HELP}; for a private or gated hub "
            "dataset, log in first (`hf auth login` or HF_TOKEN)."
        ) from err


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    """One JSON value per non-blank line; a bad line is an error naming its number."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path} line {number + 1}: not valid JSON ({err}).") from err
    return rows

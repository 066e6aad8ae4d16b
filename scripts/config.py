"""Config dataclasses as command lines, parsed the Hugging Face way.

A field documents itself with ``field(metadata={"help": "..."})`` and may bound itself with
``"min"`` / ``"max"`` (inclusive); ``"path": True`` marks a file or folder that, when it is
written as a local path (``/``, ``.``, ``~`` or two or more ``/``), must exist.
:func:`add_dataclass_arguments` turns every field into a ``--flag`` through
``transformers.HfArgumentParser``'s own field parser (booleans are bare flags with ``--no-``
forms, ``Literal`` types become choices), :func:`load_config_file` reads the same fields from a
JSON or YAML file (``--config``), and :func:`dataclass_from_args` builds the config back and
checks every number and path before any work starts.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from transformers import HfArgumentParser

T = TypeVar("T")
_ARGPARSE_KEYS = ("help",)


class ConfigError(ValueError):
    """A setting is out of range or unknown; the message names the flag."""


def flag_of(name: str) -> str:
    """``out_dir`` -> ``--out-dir``."""
    return "--" + name.replace("_", "-")


def add_dataclass_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one ``--flag`` per dataclass field, as ``HfArgumentParser`` would."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        plain = copy.copy(f)
        plain.type = hints[f.name]
        plain.metadata = types.MappingProxyType(
            {k: v for k, v in f.metadata.items() if k in _ARGPARSE_KEYS}
        )
        HfArgumentParser._parse_dataclass_field(parser, plain)


def load_config_file(path: str | Path, config_cls: type) -> dict[str, Any]:
    """The settings of a JSON or YAML file, keyed by field name (dashes or underscores).

    Raises:
        ConfigError: for a missing file, another format, or a key that is no field.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: not found.")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        raise ConfigError(f"--config {path}: expected a .json, .yaml or .yml file.")
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of settings, got {type(data)}.")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"--config {path}: unknown setting(s) {', '.join(unknown)}; see --help for the flags."
        )
    return data


def check_ranges(config: Any) -> None:
    """Raise :class:`ConfigError` naming the flag of the first field outside its bounds."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" if high is None else (
                f"<= {high}" if low is None else f"between {low} and {high}")
            raise ConfigError(f"{flag_of(f.name)} must be {bounds}, got {value}.")


def looks_local(value: str) -> bool:
    """Whether a model/data reference is written as a local path rather than a hub id."""
    return value.startswith(("/", ".", "~")) or value.count("/") >= 2 or value.endswith(
        (".json", ".jsonl", ".txt", ".csv", ".parquet", ".yaml", ".yml")
    )


def check_paths(config: Any) -> None:
    """Raise :class:`ConfigError` for a local path field that does not exist."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        local = f.metadata.get("path") and isinstance(value, str) and looks_local(value)
        if local and not Path(value).expanduser().exists():
            raise ConfigError(f"{flag_of(f.name)} {value}: not found.")


def dataclass_from_args(config_cls: type[T], args: argparse.Namespace) -> T:
    """Build the config back from parsed arguments; range- and path-check it.

    Extra attributes on ``args`` are ignored.
    """
    names = {f.name for f in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    config = config_cls(**{k: v for k, v in vars(args).items() if k in names})
    check_ranges(config)
    check_paths(config)
    return config

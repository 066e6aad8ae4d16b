"""Config dataclasses as command lines: one dataclass per script, one docstring per field.

A field documents itself with ``field(metadata={"help": "..."})``; :func:`add_dataclass_arguments`
turns every field into a ``--flag`` and :func:`dataclass_from_args` reads them back, so the
config is documented once and the ``--help`` text cannot drift from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; plain types pass through."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one ``--field-name`` option per dataclass field, with its help and default."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flag = "--" + f.name.replace("_", "-")
        common = {"default": default, "help": f"{f.metadata.get('help', '')} (default: {default})"}
        if kind is bool:
            parser.add_argument(flag, type=_parse_bool, metavar="BOOL", **common)
        elif typing.get_origin(kind) is typing.Literal:
            choices = list(typing.get_args(kind))
            parser.add_argument(flag, type=type(choices[0]), choices=choices, **common)
        else:
            parser.add_argument(flag, type=kind if kind in (int, float) else str, **common)


def dataclass_from_args(config_cls: type[T], args: argparse.Namespace) -> T:
    """Build the config back from parsed arguments (extra attributes on ``args`` are ignored)."""
    names = {f.name for f in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    return config_cls(**{k: v for k, v in vars(args).items() if k in names})

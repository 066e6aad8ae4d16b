"""A checkpoint's state as JSON plus safetensors: data only, never pickle, on either side.

:func:`encode_state` splits a tree of dicts, lists, JSON scalars, numpy arrays and torch tensors
into a JSON tree, in which each array is replaced by ``{"__tensor__": key, "file": ..., "numpy":
...}``, and the tensors of each safetensors file; :func:`write_state` writes them as
``state.json`` and ``*.safetensors``, and :func:`read_state` puts the tree back. Anything else (a
function, a class, an object) is refused with its place in the tree: a checkpoint holds data,
not code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rlhf_gym.agents.common.checkpoint_files import CheckpointError, pause, recovery
from safetensors.torch import load_file, save_file

STATE_FILE = "state.json"
TENSOR = "__tensor__"

Tensors = dict[str, dict[str, torch.Tensor]]


def encode_state(tree: Mapping[str, Any], files: Mapping[str, str]) -> tuple[dict, Tensors]:
    """Split ``tree`` into its JSON part and its tensors, grouped by file.

    Args:
        tree: the state; its values are dicts, lists, tuples, JSON scalars, arrays, tensors.
        files: top-level key -> the safetensors file (stem) of that key's tensors; others go to
            ``state.safetensors``.

    Raises:
        TypeError: for a value that is not data, naming where it is.
    """
    tensors: Tensors = {}
    encoded = {
        key: _encode(value, [key], tensors, f"{files.get(key, 'state')}.safetensors")
        for key, value in tree.items()
    }
    return encoded, tensors


def _encode(value: Any, where: list[str], tensors: Tensors, file: str) -> Any:
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str) or key == TENSOR:
                raise TypeError(f"checkpoint state {'.'.join(where)} has key {key!r}: use strings.")
        return {k: _encode(v, [*where, k], tensors, file) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, [*where, str(i)], tensors, file) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray | torch.Tensor):
        is_numpy = isinstance(value, np.ndarray)
        if is_numpy and value.dtype == object:
            raise TypeError(f"checkpoint state {'.'.join(where)} is an object array (not data).")
        key = "/".join(where)
        tensor = torch.from_numpy(np.ascontiguousarray(value)) if is_numpy else value
        tensors.setdefault(file, {})[key] = tensor.detach().cpu().contiguous()
        return {TENSOR: key, "file": file, "numpy": is_numpy}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"checkpoint state {'.'.join(where)} is a {type(value).__name__} ({value!r:.80}): a "
        "checkpoint holds JSON values and tensors only (no pickle), so code and objects cannot "
        "be saved. Pass plain values (e.g. a float instead of a schedule)."
    )


def write_state(directory: Path, encoded: dict, tensors: Tensors) -> None:
    """Write the tensors (one safetensors file each group), then ``state.json``."""
    for file, group in sorted(tensors.items()):
        save_file(group, str(directory / file))
        pause()
    text = json.dumps(encoded, allow_nan=True)
    (directory / STATE_FILE).write_text(text, encoding="utf-8")


def read_state(directory: Path, only: str | None = None) -> dict[str, Any]:
    """The state tree of a checkpoint directory (JSON and safetensors; nothing is unpickled).

    Args:
        directory: a verified checkpoint directory.
        only: read just this top-level key (the others' tensors are not loaded).

    Raises:
        CheckpointError: when ``state.json`` is not JSON (e.g. a pickle put in its place) or a
            tensor file cannot be read; the message names the file.
    """
    path = directory / STATE_FILE
    try:
        tree = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path} is not a JSON state ({type(err).__name__}: {err}); a checkpoint holds only "
            f"JSON and safetensors and is never unpickled. {recovery(directory, None)}"
        ) from err
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} is not a checkpoint state (a JSON object).")
    if only is not None:
        tree = {only: tree.get(only)}
    return _decode(tree, directory, {})


def _decode(value: Any, directory: Path, loaded: Tensors) -> Any:
    if isinstance(value, dict):
        if TENSOR in value:
            return _tensor(value, directory, loaded)
        return {k: _decode(v, directory, loaded) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, directory, loaded) for v in value]
    return value


def _tensor(ref: dict[str, Any], directory: Path, loaded: Tensors) -> Any:
    file = str(ref["file"])
    if file not in loaded:
        if Path(file).name != file or not file.endswith(".safetensors"):
            raise CheckpointError(f"{directory / STATE_FILE} names {file!r}, not a tensor file.")
        try:
            loaded[file] = load_file(str(directory / file))
        except Exception as err:  # safetensors raises its own SafetensorError
            raise CheckpointError(
                f"{directory / file} cannot be read ({err}). {recovery(directory, None)}"
            ) from err
    try:
        tensor = loaded[file][str(ref[TENSOR])]
    except KeyError as err:
        raise CheckpointError(f"{directory / file} has no tensor {ref[TENSOR]!r}.") from err
    return tensor.numpy() if ref.get("numpy") else tensor


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's ``state_dict`` with string keys (tensors stay tensors)."""
    saved = optimizer.state_dict()
    state = {str(index): dict(values) for index, values in saved["state"].items()}
    return {"state": state, "param_groups": saved["param_groups"]}


def optimizer_state_dict(saved: dict[str, Any]) -> dict[str, Any]:
    """Back to a ``state_dict``: integer keys, and tuples (``betas``) where JSON made lists."""
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in saved["param_groups"]
    ]
    return {"state": {int(k): v for k, v in saved["state"].items()}, "param_groups": groups}

"""A checkpoint directory that a kill at any moment cannot lose, and its manifest.

:func:`write_checkpoint` writes a new directory next to ``path`` (``path.tmp-<pid>-<hex>``),
fsyncs every file, writes the manifest ``checkpoint.json`` last (each file's size and SHA-256:
its presence marks the directory complete), then swaps it in with two renames, ``path ->
path.old`` and ``tmp -> path``, and removes ``path.old``. Whenever a kill lands, one of these
holds a complete checkpoint:

* before the first rename: ``path`` (the previous checkpoint) is untouched;
* between the renames: ``path`` is missing and ``path.old`` is complete;
* after the second: ``path`` is the new checkpoint.

:func:`locate` returns ``path`` when it is complete and ``path.old`` when only that is, after
checking every file against the manifest. A save first removes the temp folders of killed
saves, and checks that it can replace what is there, so a read-only folder fails before
anything is changed. One writer per path. The layout: ``docs/checkpoints.md``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

MANIFEST = "checkpoint.json"
FORMAT = "rlhf_gym-checkpoint"
VERSION = 1
#: Seconds to sleep between the steps of a save (testing kills inside a save); unset: none.
PAUSE_ENV = "RLHF_GYM_CHECKPOINT_PAUSE"
#: Suffixes of files that a loader could unpickle: never part of a checkpoint.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".zip", ".joblib"})


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupt, unsafe, or cannot be written."""


def old_path(path: Path) -> Path:
    """Where the previous checkpoint waits during a save: ``path.old``."""
    return path.with_name(path.name + ".old")


def is_complete(path: Path) -> bool:
    """Whether ``path`` holds a manifest, i.e. a save finished writing it."""
    return (path / MANIFEST).is_file()


def pause() -> None:
    """Sleep ``$RLHF_GYM_CHECKPOINT_PAUSE`` seconds (a test hook; no-op when unset)."""
    delay = os.environ.get(PAUSE_ENV)
    if delay:
        time.sleep(float(delay))


# ----------------------------------------------------------------------------- writing


def write_checkpoint(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Write a checkpoint directory with ``write(tmp)`` and swap it in kill-safely.

    Args:
        path: the checkpoint directory to create or replace.
        write: fills the (empty) temp directory it is given.

    Raises:
        PermissionError: when the folder cannot be written or replaced; nothing was changed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create {path.parent} for the checkpoint: {err}") from err
    remove_stale_temps(path)
    check_replaceable(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        pause()
        write(tmp)
        pause()
        write_manifest(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pause()
    swap_in(tmp, path)


def remove_stale_temps(path: Path) -> None:
    """Remove ``path.tmp-*`` folders left by saves that were killed (one writer per path)."""
    for stale in glob.glob(glob.escape(str(path)) + ".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
        if os.path.exists(stale):
            warnings.warn(f"could not remove {stale}, left by an interrupted save.", stacklevel=3)


def check_replaceable(path: Path) -> None:
    """Raise before any change unless the save can create ``tmp`` and remove what it replaces."""
    folders = [path.parent]
    for existing in (path, old_path(path)):
        if existing.is_dir():
            folders += [Path(d) for d, _, _ in os.walk(existing)]
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(
                f"cannot save the checkpoint at {path}: {folder} is read-only, so the previous "
                "checkpoint could not be replaced. Nothing was changed. Make it writable "
                f"(chmod -R u+w {folder}) or save to another path."
            )


def write_manifest(directory: Path) -> None:
    """Fsync every file of ``directory``, then write and fsync the manifest (the last file)."""
    files = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        fsync_path(file)
        files[file.relative_to(directory).as_posix()] = {
            "bytes": file.stat().st_size,
            "sha256": sha256_of(file),
        }
    for folder in sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True):
        fsync_path(folder)
    manifest = {"format": FORMAT, "version": VERSION, "files": files}
    with open(directory / MANIFEST, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    fsync_path(directory)


def swap_in(tmp: Path, path: Path) -> None:
    """Rename ``path -> path.old`` and ``tmp -> path``, then drop ``path.old`` (see module doc)."""
    old = old_path(path)
    if path.exists():
        if is_complete(path) or not is_complete(old):
            if old.exists():
                shutil.rmtree(old)
            pause()
            os.replace(path, old)
        else:  # a leftover that never completed, while path.old is the last good checkpoint
            shutil.rmtree(path)
        pause()
    try:
        os.replace(tmp, path)
    except OSError:
        if old.exists() and not path.exists():
            os.replace(old, path)  # put the previous checkpoint back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(path.parent)
    pause()
    shutil.rmtree(old, ignore_errors=True)
    if old.exists():
        warnings.warn(f"saved {path}, but could not remove {old}.", stacklevel=3)


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entries to disk (skipped where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- reading


def locate(path: str | os.PathLike) -> Path:
    """The complete, verified checkpoint at ``path``, or at ``path.old`` when only that is.

    ``path`` is missing or incomplete only when a save was killed between its two renames (or
    before its first save finished); then the previous checkpoint, ``path.old``, is used.

    Raises:
        CheckpointError: no complete checkpoint at either place, a corrupt file (named), a
            file that could carry pickle, or an old pickle-based ``agent.zip`` checkpoint.
    """
    path = Path(path)
    old = old_path(path)
    if is_complete(path):
        verify(path, fallback=old if is_complete(old) else None)
        return path
    if is_complete(old):
        verify(old, fallback=None)
        warnings.warn(
            f"{path} is missing or incomplete (a save was interrupted); loading the previous "
            f"checkpoint {old}.",
            stacklevel=3,
        )
        return old
    if (path / "agent.zip").is_file():
        raise CheckpointError(
            f"{path} is an older checkpoint (agent.zip, stable-baselines3's pickle-based "
            "format), which this version never unpickles. Load it with the version that wrote "
            "it and save it again, or start from its policy/ folder."
        )
    raise CheckpointError(
        f"no complete checkpoint at {path} (nor a previous one at {old}): the folder is missing "
        f"or was never finished (no {MANIFEST}). Point at a folder written by save()."
    )


def verify(path: Path, fallback: Path | None) -> None:
    """Check every file against the manifest, and that nothing could carry pickle.

    Args:
        path: a complete checkpoint directory.
        fallback: a complete previous checkpoint to name in the error, if there is one.

    Raises:
        CheckpointError: naming the first bad file and how to recover.
    """
    manifest = read_manifest(path)
    for name, expected in manifest["files"].items():
        file = path / name
        problem = file_problem(file, expected)
        if problem is not None:
            raise CheckpointError(f"{file} is {problem}. {recovery(path, fallback)}")
    for file in path.rglob("*"):
        if file.suffix in PICKLE_SUFFIXES:
            raise CheckpointError(
                f"{file} is not part of a checkpoint: files that a loader could unpickle "
                "(.bin, .pt, .pkl, .zip, ...) are refused, since checkpoints hold only JSON and "
                "safetensors. Remove it if you trust the folder, else use another checkpoint."
            )


def read_manifest(path: Path) -> dict:
    """The parsed manifest of ``path`` (JSON only), or a clear error."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path / MANIFEST} is not JSON ({err}); checkpoints hold no pickle. "
            f"{recovery(path, None)}"
        ) from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path / MANIFEST} is not an rlhf_gym checkpoint manifest.")
    if manifest.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer rlhf_gym (format {manifest['version']} > "
            f"{VERSION}); upgrade to load it."
        )
    return manifest


def file_problem(file: Path, expected: dict) -> str | None:
    """What is wrong with ``file`` against its manifest entry, or None."""
    if not file.is_file():
        return "missing"
    size = file.stat().st_size
    if size != expected["bytes"]:
        return f"truncated or overwritten ({size} bytes, the save wrote {expected['bytes']})"
    if sha256_of(file) != expected["sha256"]:
        return "corrupt (its SHA-256 differs from the one recorded when it was saved)"
    return None


def recovery(path: Path, fallback: Path | None) -> str:
    """How to recover from a bad checkpoint at ``path``."""
    if fallback is not None:
        return (
            f"The checkpoint at {path} cannot be used; the previous one is intact at {fallback}: "
            f"load that (or move it to {path})."
        )
    return (
        f"The checkpoint at {path} cannot be used: resume from an earlier checkpoint (a copy, "
        "or another run's), or re-run the job from the start."
    )

"""A crash-safe artifact cache: build in a temp folder, checksum, then rename into place.

Layout: ``<root>/toy-<version>-seed<seed>-<hash>/`` where ``root`` is ``--out``,
``$RLHF_GYM_CACHE`` or ``~/.cache/rlhf_gym`` and ``hash`` covers every setting that changes the
artifacts. A folder counts as complete only when its ``COMPLETE`` marker exists and every file in
``manifest.json`` has its recorded size and SHA-256. A build writes into a sibling
``.tmp-*`` folder and ``os.rename``-s it into place only after writing the manifest and the marker,
so a crash mid-build leaves no folder that could pass for a finished one; a folder that fails the
check (a truncated or missing file) is reported, deleted and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

MANIFEST = "manifest.json"
COMPLETE = "COMPLETE"


class ToyCacheError(OSError):
    """The cache location cannot be used (for example, it is not writable)."""


def default_cache_root() -> Path:
    """``$RLHF_GYM_CACHE`` if set, else ``~/.cache/rlhf_gym``."""
    env = os.environ.get("RLHF_GYM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlhf_gym"


def config_hash(payload: dict[str, object]) -> str:
    """A short stable hash of a JSON-able config."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_writable(root: Path) -> None:
    """Create ``root`` if needed and check a file can be written there.

    Raises:
        ToyCacheError: naming the path and the reason.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ToyCacheError(
            f"cannot write toy-world artifacts to {str(root)!r}: {err.strerror or err}. "
            "Pass a writable directory with --out (or out_dir=...), or set $RLHF_GYM_CACHE."
        ) from err


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    skip = (MANIFEST, COMPLETE)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in skip)


def seal(folder: Path, info: dict[str, object]) -> None:
    """Write ``manifest.json`` (every file's size and SHA-256, plus ``info``), then ``COMPLETE``."""
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(folder)
    }
    (folder / MANIFEST).write_text(json.dumps({"files": files, **info}, indent=2, sort_keys=True))
    (folder / COMPLETE).write_text("ok\n")


def check(folder: Path) -> str | None:
    """``None`` when ``folder`` is a complete, intact cache entry; else the reason it is not."""
    if not folder.is_dir():
        return "missing"
    if not (folder / COMPLETE).is_file():
        return f"no {COMPLETE} marker (a build was interrupted)"
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError) as err:
        return f"unreadable {MANIFEST}: {err}"
    for name, meta in files.items():
        path = folder / name
        if not path.is_file():
            return f"file {name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"file {name} has {path.stat().st_size} bytes, expected {meta['size']}"
        if _sha256(path) != meta["sha256"]:
            return f"file {name} has the wrong checksum"
    return None


def read_manifest(folder: Path) -> dict[str, object]:
    """The manifest of a sealed folder."""
    return json.loads((folder / MANIFEST).read_text())


@contextlib.contextmanager
def staging(final: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temp folder next to ``final``; on success rename it to ``final`` atomically.

    If ``final`` exists by then (a concurrent build) and is intact, the new copy is dropped unless
    ``replace``. On error the temp folder is removed and ``final`` is untouched.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            if not replace and check(final) is None:
                shutil.rmtree(tmp)
                return
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

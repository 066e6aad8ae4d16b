"""House rules: the house reads like its imports.

A reader who sees ``import rlhf_gym.envs.wrappers.faces`` should find the code in
``envs/wrappers/faces.py``; the root package ``rlhf_gym`` itself lives in ``rlhf_gym/``. These
tests keep the repository's layout, its import graph and its files honest:

* every module of the package lives at the path its import name spells,
* the package's modules import one another without cycles,
* no source file grows past 400 lines,
* nothing in the repository points at notes kept outside it.

The package list and its folders are read from ``pyproject.toml`` at test time, so the tests
follow the packaging instead of repeating it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import os
import pkgutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOT_PACKAGE = "rlhf_gym"
MAX_LINES = 400
# Built from pieces so that this file does not match itself.
OUTSIDE_NEEDLES = ("RLHF" + "_NOTES", ".." + "/shared")

Edge = tuple[str, str]


def _fail_listing(findings: list[str], what: str) -> None:
    """Fail with one finding a line (and no traceback, which would only repeat them)."""
    if findings:
        pytest.fail(f"{len(findings)} {what}:\n  " + "\n  ".join(findings), pytrace=False)


# --- the package as pyproject.toml declares it -------------------------------------------------


def _folder_of(package: str, package_dir: dict[str, str]) -> Path:
    """The folder setuptools takes ``package`` from: its nearest mapped ancestor, then names."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in package_dir:
            return ROOT / package_dir[prefix] / Path(*parts[i:])
    return ROOT / package_dir.get("", ".") / Path(*parts)


@functools.cache
def package_folders() -> dict[str, Path]:
    """Each package listed in ``[tool.setuptools] packages``, with the folder it is built from."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = setuptools["packages"]
    assert isinstance(packages, list), "[tool.setuptools] packages should be an explicit list"
    package_dir = setuptools.get("package-dir", {})
    return {package: _folder_of(package, package_dir) for package in packages}


def _py_files(folder: Path, skip: set[Path]) -> Iterator[Path]:
    """Every ``.py`` file under ``folder``, leaving out the folders of other packages."""
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d != "__pycache__" and (here / d).resolve() not in skip
        )
        yield from (here / f for f in sorted(files) if f.endswith(".py"))


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = path.relative_to(folder).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


@functools.cache
def module_files() -> dict[str, Path]:
    """Module name -> source file, found by listing the packages' folders (no import)."""
    folders = package_folders()
    resolved = {folder.resolve() for folder in folders.values()}
    found: dict[str, Path] = {}
    for package, folder in folders.items():
        for path in _py_files(folder, skip=resolved - {folder.resolve()}):
            found.setdefault(_module_name(package, folder, path), path)
    return found


def _shown(path: str | Path | None) -> str:
    """A path relative to the repository root where it can be, else as it is."""
    if path is None:
        return "<no file>"
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


# --- 1. every module lives where it imports -----------------------------------------------------


def _error_now() -> str:
    """The exception being handled, in one line."""
    error = sys.exc_info()[1]
    return f"{type(error).__name__}: {error}"


def _record_failure(failed: dict[str, str], name: str) -> None:
    failed.setdefault(name, _error_now())


def _imported_modules(failed: dict[str, str]) -> set[str]:
    """The names import finds: each listed package, walked over its ``__path__``.

    Packages that fail to import land in ``failed`` (name -> error) instead.
    """
    names: set[str] = set()
    for package in package_folders():
        try:
            module = importlib.import_module(package)
        except Exception:
            failed.setdefault(package, _error_now())
            continue
        names.add(package)
        path = getattr(module, "__path__", [])
        on_error = functools.partial(_record_failure, failed)
        walk = pkgutil.walk_packages(path, package + ".", on_error)
        names.update(info.name for info in walk)
    return names


def _origin(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _expected_path(name: str, is_package: bool) -> str:
    """Where ``rlhf_gym.p1...pn`` lives: ``p1/.../pn.py``, or ``p1/.../pn/__init__.py``."""
    parts = name.split(".")[1:] if name != ROOT_PACKAGE else [ROOT_PACKAGE]
    return "/".join(parts) + ("/__init__.py" if is_package else ".py")


def _misplaced(name: str, path: str | None) -> str | None:
    """Why ``path`` is not where ``name`` belongs (a leading ``rlhf_gym/`` is optional)."""
    is_package = path is None or path.endswith("__init__.py")
    expected = _expected_path(name, is_package)
    allowed = {expected} if name == ROOT_PACKAGE else {expected, f"{ROOT_PACKAGE}/{expected}"}
    if path in allowed:
        return None
    want = expected if name == ROOT_PACKAGE else f"[{ROOT_PACKAGE}/]{expected}"
    return f"{name}: is {path or '<no file>'}, should be {want}"


def _unlisted(name: str, is_package: bool) -> str | None:
    """Why a module would be left out of the wheel: its package is not in pyproject."""
    package = name if is_package else name.rpartition(".")[0]
    if package in package_folders():
        return None
    return f"{name}: its package {package} is not in [tool.setuptools] packages"


def _module_problems(name: str, file: Path | None) -> Iterator[str]:
    origin = _origin(name)
    if file is not None and (origin is None or Path(origin).resolve() != file.resolve()):
        yield f"{name}: import does not find {_shown(file)} (finds {_shown(origin)})"
    paths = {_shown(p) for p in (origin, file) if p is not None}
    for path in sorted(paths) or [None]:
        yield from filter(None, [_misplaced(name, path)])
        yield from filter(None, [_unlisted(name, (path or "").endswith("__init__.py"))])


def test_every_module_lives_where_it_imports() -> None:
    problems = [
        f"{package}: folder {_shown(folder)} does not exist"
        for package, folder in package_folders().items()
        if not folder.is_dir()
    ]
    failed: dict[str, str] = {}
    names = _imported_modules(failed) | module_files().keys()
    problems += [f"{name}: cannot be imported ({error})" for name, error in sorted(failed.items())]
    for name in sorted(names):
        # Below a package that failed to import, nothing can be found: already reported.
        if not any(name.startswith(bad + ".") for bad in failed):
            problems += _module_problems(name, module_files().get(name))
    _fail_listing(problems, "modules do not live where they import")


# --- 2. no import cycles -----------------------------------------------------------------------


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module ``from X import ...`` names, a relative ``X`` resolved against the importer."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (the one import executes last)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return None


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, modules: dict[str, Path]
) -> Iterator[str | None]:
    """What a statement imports: ``from pkg import name`` is ``pkg.name`` if a module, else pkg."""
    if isinstance(node, ast.Import):
        yield from (_known(alias.name, modules) for alias in node.names)
        return
    source = _absolute(node, importer, modules[importer].name == "__init__.py")
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in modules else _known(source, modules)


def _is_ancestor(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


@functools.cache
def import_graph() -> dict[Edge, list[str]]:
    """Every import edge among our modules, with the ``file:line`` of each statement."""
    modules = module_files()
    edges: dict[Edge, list[str]] = {}
    for importer, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, importer, modules):
                if target is not None and not _is_ancestor(target, importer):
                    where = f"{_shown(path)}:{node.lineno}"
                    edges.setdefault((importer, target), []).append(where)
    return edges


def _strongly_connected(nodes: list[str], edges: set[Edge]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in discovery order."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for source, target in sorted(edges):
        successors[source].append(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while not component or component[-1] != node:
                        component.append(stack.pop())
                        on_stack.discard(component[-1])
                    components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def _describe_cycle(component: list[str], graph: dict[Edge, list[str]]) -> str:
    inside = sorted((s, t) for s, t in graph if s in component and t in component)
    lines = [f"{s} -> {t}  ({', '.join(graph[s, t])})" for s, t in inside]
    return f"cycle among {', '.join(component)}:\n    " + "\n    ".join(lines)


def test_no_import_cycles() -> None:
    graph = import_graph()
    components = _strongly_connected(sorted(module_files()), set(graph))
    cycles = [c for c in components if len(c) > 1 or (c[0], c[0]) in graph]
    _fail_listing([_describe_cycle(c, graph) for c in cycles], "import cycles")


# --- 3. and 4. the tracked files ---------------------------------------------------------------


def tracked_files(*patterns: str) -> list[Path]:
    """Files git tracks (and that exist in the work tree), optionally matching ``patterns``."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--", *patterns],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [ROOT / name for name in listing.split("\0") if name and (ROOT / name).is_file()]


def test_no_source_file_over_400_lines() -> None:
    counts = {path: len(path.read_text().splitlines()) for path in tracked_files("*.py")}
    assert counts, "git ls-files found no Python file"
    long = [f"{_shown(p)}: {n} lines" for p, n in sorted(counts.items()) if n > MAX_LINES]
    _fail_listing(long, f"files over {MAX_LINES} lines")


def _text(path: Path) -> str | None:
    """The file's text, or ``None`` for a binary file."""
    data = path.read_bytes()
    return None if b"\0" in data[:8192] else data.decode("utf-8", errors="replace")


def _outside_references(path: Path) -> Iterator[str]:
    text = _text(path)
    for number, line in enumerate((text or "").splitlines(), start=1):
        if any(needle in line for needle in OUTSIDE_NEEDLES):
            yield f"{_shown(path)}:{number}: {line.strip()[:100]}"


def test_nothing_refers_outside_the_repository() -> None:
    files = tracked_files()
    assert files, "git ls-files found no file"
    hits = [hit for path in files for hit in _outside_references(path)]
    needles = " or ".join(OUTSIDE_NEEDLES)
    _fail_listing(hits, f"lines refer to notes outside the repository ({needles})")

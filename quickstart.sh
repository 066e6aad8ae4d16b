#!/usr/bin/env bash
# The README's two commands:  bash quickstart.sh demo   |   bash quickstart.sh test
# Each sets everything up in ./.venv (idempotent: a second run only checks) and then runs.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${RLHF_GYM_VENV:-.venv}"
# Pinned only when no torch is installed yet: on this project's CPU machines the pin resolves
# to a local CPU wheel; on a GPU machine it is PyPI's ordinary CUDA build. A torch that is
# already in the venv (say, your own CUDA build) is never replaced: pyproject asks torch>=2.4.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

usage() { echo "usage: bash quickstart.sh {demo|test} [extra args for the command]" >&2; exit 2; }
[ $# -ge 1 ] || usage
cmd="$1"; shift

setup() {
  # $1: the project's extras this command needs ("" for demo, "test" for the test suite).
  local extras="$1"
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "rlhf-gym needs Python >= 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11." >&2
    exit 1
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local py="$VENV/bin/python" installed=0
  # pip byte-compiles what it installs one file at a time, all of it. With --no-compile, the demo
  # lets Python compile what it imports when it first imports it (about 8 s of the 27 s that
  # all of site-packages takes); the tests start many processes and import far more, so their
  # setup byte-compiles everything in one parallel compileall.
  if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "[quickstart] installing $TORCH_SPEC" >&2
    "$py" -m pip install --quiet --no-compile "$TORCH_SPEC"
    installed=1
  fi
  # Reinstall the project only when its dependency list changed, or when this command needs
  # extras the last install left out (the demo needs none; the tests need [test]).
  local stamp="$VENV/.rlhf_gym-installed" want have
  want="$(cat pyproject.toml | "$py" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ "$have" != "$want test" ] && [ "$have" != "$want $extras" ]; then
    echo "[quickstart] installing rlhf-gym (editable)${extras:+ with $extras extras}" >&2
    "$py" -m pip install --quiet --no-compile -e ".${extras:+[$extras]}"
    echo "$want $extras" > "$stamp"
    installed=1
  fi
  if [ "$installed" = 1 ] && [ "$extras" = test ]; then
    # Some packages ship files that are not meant to compile; pip skips those too.
    "$py" -m compileall -q -j 0 "$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1 || true
  fi
}

case "$cmd" in
  demo) setup ""; exec "$VENV/bin/rlhf-gym" demo "$@" ;;
  test) setup test; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) usage ;;
esac

"""Runs as child processes: each a fresh interpreter, timed, with its own peak memory.

``compare-methods`` runs every (method, seed) this way, ``demo --compare --jobs`` every seed. A
child runs one ``rlhf-gym`` command through :func:`measured`, which records the child's own
memory high-water mark; :func:`run_jobs` runs the children a few at a time and stops at the
first failure, quoting its log.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple

PROC_STATUS = "/proc/self/status"
#: What compare-methods' idle child imports: every run imports at least these.
IDLE_IMPORTS = ("rlhf_gym.training.builders", "rlhf_gym.agents.group", "rlhf_gym.agents.dpo")
#: A run's interpreter: :func:`measured` runs its rlhf-gym command and writes its peak memory.
CHILD = (
    "import sys; from rlhf_gym.scripts.processes import measured; "
    "sys.exit(measured(sys.argv[1:]))"
)


def as_flags(flags: dict[str, Any]) -> list[str]:
    """``{"num_envs": 8}`` -> ``["--num-envs", "8"]``; booleans as ``true``/``false``."""
    shown = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in flags.items()}
    return [part for k, v in shown.items() for part in ("--" + k.replace("_", "-"), v)]


class Job(NamedTuple):
    """One child process: its name, ``rlhf-gym`` arguments (none: the idle floor), log file."""

    name: tuple[str, int]
    args: list[str]
    log: Path


class Usage(NamedTuple):
    """What one child cost: wall seconds, peak resident memory (MiB), exit status."""

    wall_s: float
    peak_rss_mib: float
    returncode: int


def measured(argv: list[str]) -> int:
    """Child side: run ``rlhf-gym argv[1:]``, then write this program's peak RSS to ``argv[0]``.

    With no command it only imports what a run imports: the floor under every run's memory.
    The peak is ``VmHWM`` (KiB) of /proc/self/status, the high-water mark of this program's own
    memory: ``ru_maxrss`` (``getrusage``, ``os.wait4``) would not do, as Linux carries the
    parent's high-water mark across fork and exec into the child.
    """
    path, args = Path(argv[0]), argv[1:]
    if args:
        from rlhf_gym.scripts.cli import main

        status = main(args)
    else:
        for module in IDLE_IMPORTS:
            importlib.import_module(module)
        status = 0
    with open(PROC_STATUS, encoding="utf-8") as handle:
        path.write_text(next(line.split()[1] for line in handle if line.startswith("VmHWM:")))
    return status


def run_measured(job: Job, env: dict[str, str]) -> Usage:
    """Run ``job`` in a fresh interpreter to its end: its wall time and its own peak RSS."""
    peak = job.log.with_suffix(".peak_kib")
    peak.unlink(missing_ok=True)  # never read an earlier run's
    argv = [sys.executable, "-c", CHILD, str(peak), *job.args]
    start = time.perf_counter()
    with open(job.log, "w", encoding="utf-8") as log:
        status = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    kib = float(peak.read_text()) if peak.is_file() else float("nan")
    return Usage(time.perf_counter() - start, kib / 1024, status)


def child_env(threads: int, device: str) -> dict[str, str]:
    """A child's environment: ``threads`` torch threads (0: torch's); device "cpu" hides GPUs."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_jobs(
    jobs: list[Job], workers: int, env: dict[str, str], prefix: str = "[compare]"
) -> dict[tuple[str, int], Usage]:
    """Run the jobs, ``workers`` at a time, printing each one's cost after ``prefix``.

    The first failure stops the rest and raises.

    Raises:
        RuntimeError: naming the failed run, its exit status and the end of its log.
    """
    results = {}
    with ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(run_measured, job, env): job for job in jobs}
        for future in as_completed(futures):
            job, usage = futures[future], future.result()
            print(f"{prefix} {job.name[0]} seed {job.name[1]}: {usage.wall_s:.0f} s, "
                  f"peak {usage.peak_rss_mib:.0f} MiB", flush=True)  # fmt: skip
            if usage.returncode:
                for pending in futures:
                    pending.cancel()
                tail = job.log.read_text(encoding="utf-8")[-2000:]
                raise RuntimeError(f"{job.name[0]} seed {job.name[1]} exited with "
                                   f"{usage.returncode}; {job.log} ends with:\n{tail}")  # fmt: skip
            results[job.name] = usage
    return results

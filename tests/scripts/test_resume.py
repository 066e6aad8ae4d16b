"""train-ppo --resume: exact in a new process, and safe after a SIGKILL at any moment.

The exact-resume test runs ``scripts/train_ppo.py`` as subprocesses (CleanRL style). The
fault-injection test kills train-ppo 20+ times with SIGKILL, at random times and inside its
saves; to afford that many processes it forks them from a server that imported the package once
(``multiprocessing``'s forkserver), each a fresh process running the script's ``main``.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
TIME_COLUMNS = {"seconds", "time/rollout_s", "time/update_s"}
KILLS = 20
PAUSE = 0.03  # seconds between a save's steps in the killed runs (RLHF_GYM_CHECKPOINT_PAUSE)


@pytest.fixture
def job(tmp_path: Path, lm_factory) -> list[str]:
    """train-ppo flags for a tiny job: 4 rows, 6-token episodes cut by fixed 4-step rollouts."""
    from rlhf_gym.toy.grammar import ToyWorld
    from rlhf_gym.toy.tokenizer import save_tokenizer

    tokenizer = save_tokenizer(tmp_path / "tokenizer")
    lm_factory("gpt2", vocab_size=len(tokenizer)).save_pretrained(tmp_path / "policy")
    world = ToyWorld()
    (tmp_path / "train.txt").write_text("\n".join(world.train_prompts))
    (tmp_path / "heldout.txt").write_text("\n".join(world.heldout_prompts[:3]))
    flags = {
        "policy": tmp_path / "policy", "tokenizer": tmp_path / "tokenizer",
        "prompts": tmp_path / "train.txt", "eval-prompts": tmp_path / "heldout.txt",
        "reward": "gold", "num-envs": 4, "max-new-tokens": 6, "n-steps": 4, "batch-size": 4,
        "curve-samples": 2, "device": "cpu", "threads": 1, "missing-eos-penalty": -1,
    }  # fmt: skip
    pairs = [item for key, value in flags.items() for item in (f"--{key}", str(value))]
    return [*pairs, "--fixed-steps"]  # episodes in flight at every checkpoint


def train_ppo(*flags: str) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / "scripts" / "train_ppo.py"), *flags]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]


def max_weight_difference(a: Path, b: Path) -> float:
    """max |Δθ| over the policy's and value head's tensors of two saved agents."""
    worst = 0.0
    for name in ("model.safetensors", "value_head.safetensors"):
        left, right = load_file(a / "policy" / name), load_file(b / "policy" / name)
        assert left.keys() == right.keys()
        for key in left:
            worst = max(worst, (left[key] - right[key]).abs().max().item())
    return worst


def curves(out: Path) -> list[dict[str, str]]:
    with open(out / "curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in rows]


def test_resume_in_a_new_process_equals_the_straight_run(job, tmp_path) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    runs = [
        train_ppo(*job, "--iterations", "4", "--output-dir", str(straight)),
        train_ppo(*job, "--iterations", "2", "--save-every", "2", "--output-dir", str(stopped)),
    ]
    for process in runs:
        finish(process)
    finish(train_ppo("--resume", str(stopped), "--iterations", "4"))

    assert max_weight_difference(straight / "final", stopped / "final") == 0.0  # bitwise
    resumed_rows = curves(stopped)
    assert [int(r["step"]) for r in resumed_rows] == [0, 1, 2, 3, 4]
    assert resumed_rows == curves(straight)


def test_resume_keeps_the_saved_settings_and_refuses_changed_ones() -> None:
    from dataclasses import asdict

    from rlhf_gym.training.config import TrainPPOConfig, resumed_config

    saved = asdict(TrainPPOConfig(num_envs=4, iterations=2, output_dir="old/place", device="cpu"))
    config = resumed_config(TrainPPOConfig(resume="runs/a", iterations=6), saved)
    assert (config.num_envs, config.iterations, config.device) == (4, 6, "cpu")
    assert config.output_dir == config.resume == "runs/a"
    with pytest.raises(ValueError, match=r"--num-envs 8 \(the run has 4\)"):
        resumed_config(TrainPPOConfig(resume="runs/a", num_envs=8), saved)


# ------------------------------------------------------------------------- fault injection

PRELOAD = [
    "rlhf_gym.scripts.train_ppo", "rlhf_gym.scripts.cli", "rlhf_gym.agents.ppo",
    "rlhf_gym.training.builders", "rlhf_gym.training.loop", "rlhf_gym.training.sources",
    "rlhf_gym.evaluation.callbacks", "rlhf_gym.toy",
]  # fmt: skip
BOOT = """import sys
from rlhf_gym.scripts.train_ppo import main
sys.exit(main({argv!r}))
"""


class Killer:
    """Starts train-ppo in forked processes and SIGKILLs them at seeded random moments."""

    def __init__(self, out: Path, seed: int) -> None:
        self.out, self.ckpt = out, out / "checkpoint"
        self.old = out / "checkpoint.old"
        self.rng = np.random.default_rng(seed)
        moments = ["random", "writing", "between renames", "after swap"]
        self.moments = list(self.rng.permutation(np.repeat(moments, KILLS // 4 + 1)))
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.boot = out.parent / "boot.py"

    def start(self, argv: list[str]) -> multiprocessing.Process:
        self.stale = self.inode(self.old)  # a .old left by a kill before: not this run's
        self.stale_temps = set(self.temps()) if self.out.is_dir() else set()
        self.boot.write_text(BOOT.format(argv=argv))  # read by the child at its start
        process = self.context.Process(
            target=runpy.run_path, args=(str(self.boot),), kwargs={"run_name": "__main__"}
        )
        process.start()
        return process

    @staticmethod
    def inode(path: Path) -> int | None:
        try:
            return path.stat().st_ino
        except FileNotFoundError:
            return None

    def has_old(self) -> bool:
        """Whether this run's save moved the checkpoint to ``checkpoint.old``."""
        inode = self.inode(self.old)
        return inode is not None and inode != self.stale

    def temps(self) -> list[str]:
        return [p for p in os.listdir(self.out) if p.startswith("checkpoint.tmp-")]

    def new_temps(self) -> bool:
        """Whether this run has a save's temp folder (not one left by an earlier kill)."""
        return bool(set(self.temps()) - self.stale_temps)

    def wait_for(self, process: multiprocessing.Process, moment: str) -> bool:
        """Poll the folder until ``moment`` of a save is reached; False if the run ended."""
        tests = {
            "writing": self.new_temps,
            "between renames": lambda: self.has_old() and not self.ckpt.exists(),
            "after swap": lambda: self.has_old() and self.ckpt.exists(),
        }
        deadline = time.monotonic() + 120
        while process.is_alive():
            if self.out.is_dir() and tests[moment]():
                return True
            assert time.monotonic() < deadline, f"train-ppo never reached {moment!r}"
            time.sleep(0.002)
        return False

    def kill(self, process: multiprocessing.Process) -> str | None:
        """Kill at a random moment; the phase the save was in, or None if it finished first."""
        moment = self.moments[0]
        if moment == "random":
            process.join(self.rng.uniform(0.2, 2.0))
        elif self.wait_for(process, moment) and moment == "writing":
            time.sleep(self.rng.uniform(0.0, 3 * PAUSE))
        if not process.is_alive():
            return None
        self.moments.pop(0)
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        assert process.exitcode == -signal.SIGKILL
        if self.has_old():
            return "after swap" if self.ckpt.exists() else "between renames"
        return "writing" if self.new_temps() else "outside a save"


def saved_steps(ckpt: Path) -> list[int] | None:
    """The steps recorded in the checkpoint (or its fallback), after loading the agent."""
    from rlhf_gym.agents.common.checkpoint import read_checkpoint_extra
    from rlhf_gym.agents.common.checkpoint_files import CheckpointError
    from rlhf_gym.agents.ppo import LMPPO

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LMPPO.load(ckpt, device="cpu")
            return [int(r["step"]) for r in read_checkpoint_extra(ckpt)["records"]]
    except CheckpointError:
        for folder in (ckpt, ckpt.with_name("checkpoint.old")):
            assert not (folder / "checkpoint.json").exists(), f"{folder} is complete but fails"
        return None


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and forkserver are POSIX")
def test_sigkill_at_any_moment_leaves_a_checkpoint_to_resume(job, tmp_path, monkeypatch):
    iterations = 30
    straight, out = tmp_path / "straight", tmp_path / "killed"
    reference = train_ppo(*job, "--iterations", str(iterations), "--save-every", "1",
                          "--output-dir", str(straight))  # fmt: skip
    monkeypatch.setenv("RLHF_GYM_CHECKPOINT_PAUSE", str(PAUSE))
    fresh = [*job, "--iterations", str(iterations), "--save-every", "1", "--output-dir", str(out)]
    killer, phases, last, start = Killer(out, seed=0), [], 0, time.perf_counter()
    argv, resumed, ended = fresh, 0, 0
    while len(phases) < KILLS and ended < KILLS:
        phase = killer.kill(killer.start(argv))
        if phase is None:  # the run reached its end before the kill: run it again
            argv, last, ended = fresh, 0, ended + 1
            continue
        phases.append(phase)
        steps = saved_steps(out / "checkpoint")
        if steps is not None:
            assert steps == list(range(len(steps))) and steps[-1] >= last, steps
            last = steps[-1]
        resumed += steps is not None
        argv = fresh if steps is None else ["--resume", str(out)]
    final = killer.start(["--resume", str(out)])
    final.join(300)
    assert final.exitcode == 0
    finish(reference)
    counts = {p: phases.count(p) for p in sorted(set(phases))}
    print(f"{len(phases)} kills, {resumed} resumes, {ended} runs ended before their kill, "
          f"{time.perf_counter() - start:.0f} s: {json.dumps(counts)}")  # fmt: skip
    assert len(phases) >= KILLS and sum(p != "outside a save" for p in phases) >= KILLS // 2
    assert not killer.temps() and not killer.old.exists()
    assert max_weight_difference(straight / "final", out / "final") == 0.0
    assert curves(out) == curves(straight)

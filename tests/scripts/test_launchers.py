"""The CLI under a 2-process launcher (torchrun, gloo on CPU).

``train-rm``: the Trainer splits each global batch over the ranks, so with a train set that is a
whole number of batches the run takes the same optimiser steps as one process; rank 0 alone
samples for the normalisation and writes the one model folder. ``train-ppo``: rank 0 alone
evaluates, logs and writes; a 2-rank run resumes under the launcher.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hf_models import save_chat_llama
from safetensors.torch import load_file

ITEMS = ["cat", "dog", "bird", "movie", "film", "book", "i", "you"]
GOOD, BAD = ["good", "great", "nice"], ["bad", "awful"]


def write_pairs(path: Path, count: int) -> Path:
    rows = []
    for index in range(count):
        item = ITEMS[index % len(ITEMS)]
        good, bad = GOOD[index % len(GOOD)], BAD[index % len(BAD)]
        chosen, rejected = f"the {item} is {good}", f"the {item} is {bad}"
        rows.append({"prompt": f"tell me about the {item}", "chosen": chosen, "rejected": rejected})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
TORCHRUN = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node"]
needs_torchrun = pytest.mark.skipif(
    not Path(TORCHRUN[0]).exists(), reason="torchrun comes with torch; this install lacks it"
)


def launch(argv: list[str]) -> str:
    """Run a command line; return its stdout, failing the test with its stderr on an error."""
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def train_rm(launcher: list[str], sft: Path, prefs: Path, out: Path) -> str:
    argv = [
        *launcher, "-m", "rlhf_gym.scripts.cli", "train-rm", "--base-model", str(sft),
        "--preferences", str(prefs), "--output-dir", str(out), "--rm-epochs", "1",
        "--batch-size", "8", "--eval-fraction", "0.2", "--max-length", "32",
        "--norm-samples", "8", "--check-samples", "8", "--max-new-tokens", "4",
    ]  # fmt: skip
    return launch(argv)


def held_out_accuracy(stdout: str) -> float:
    return float(re.search(r"held-out accuracy\s+([0-9.]+)", stdout).group(1))


@needs_torchrun
def test_two_processes_write_one_folder_equal_to_one_process(tmp_path: Path) -> None:
    sft = save_chat_llama(tmp_path / "sft")
    prefs = write_pairs(tmp_path / "prefs.jsonl", 40)  # 32 train pairs: 4 whole batches of 8
    one = train_rm([sys.executable], sft, prefs, tmp_path / "one")
    two = train_rm([*TORCHRUN, "2"], sft, prefs, tmp_path / "two")

    assert held_out_accuracy(two) == pytest.approx(held_out_accuracy(one), abs=1e-9)
    assert "data-parallel over 2 processes" in two and "data-parallel" not in one
    assert two.count("held-out accuracy") == 1  # rank 0 alone reports
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    weights = [load_file(tmp_path / run / "model.safetensors") for run in ("one", "two")]
    moved = load_file(sft / "model.safetensors")
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=1e-5)
    trunk = [n for n in weights[0] if n in moved]
    assert any((weights[0][n] - moved[n]).abs().max() > 1e-4 for n in trunk), "nothing trained"
    gains = [json.loads((tmp_path / run / "rlhf_gym_reward.json").read_text())["gain"]
             for run in ("one", "two")]  # fmt: skip
    assert gains[1] == pytest.approx(gains[0], rel=1e-4)


@needs_torchrun
def test_train_ppo_on_two_ranks_writes_once_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ppo = [*TORCHRUN, "2", "-m", "rlhf_gym.scripts.cli", "train-ppo"]
    first = launch([
        *ppo, "--iterations", "2", "--num-envs", "4", "--max-new-tokens", "8", "--batch-size",
        "4", "--curve-samples", "2", "--device", "cpu", "--threads", "1", "--save-every", "1",
        "--report-to", "csv", "--output-dir", str(out),
    ])  # fmt: skip
    assert first.count("saved the policy") == 1 and first.count("iteration 2:") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "curves.csv", "final", "logs"]
    assert [p.name for p in (out / "logs").iterdir()] == ["progress.csv"]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["world_size"] == 2  # both ranks' generators and episodes are in it

    resumed = launch([*ppo, "--resume", str(out), "--iterations", "3"])
    assert resumed.count("iteration 3:") == 1 and "iteration 2:" not in resumed
    rows = (out / "curves.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1", "2", "3"]

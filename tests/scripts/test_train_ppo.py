"""Smoke test of scripts/train_ppo.py as a subprocess with a tiny budget (CleanRL style)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from tracking import tensorboard_scalars

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy_like(tmp_path: Path, lm_factory) -> dict[str, Path]:
    from rlhf_gym.toy.grammar import ToyWorld
    from rlhf_gym.toy.tokenizer import save_tokenizer

    tokenizer = save_tokenizer(tmp_path / "tokenizer")
    lm_factory("gpt2", vocab_size=len(tokenizer)).save_pretrained(tmp_path / "policy")
    world = ToyWorld()
    (tmp_path / "train.txt").write_text("\n".join(world.train_prompts))
    (tmp_path / "heldout.txt").write_text("\n".join(world.heldout_prompts))
    return {"dir": tmp_path}


def test_script_trains_and_writes_curves(toy_like) -> None:
    out = toy_like["dir"] / "run"
    d = toy_like["dir"]
    command = [
        sys.executable,
        str(ROOT / "scripts" / "train_ppo.py"),
        "--policy",
        str(d / "policy"),
        "--tokenizer",
        str(d / "tokenizer"),
        "--prompts",
        str(d / "train.txt"),
        "--eval-prompts",
        str(d / "heldout.txt"),
        "--reward",
        "gold",
        "--iterations",
        "2",
        "--num-envs",
        "4",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--output-dir",
        str(out),
        "--missing-eos-penalty",
        "-1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    for key in ("gold", "proxy", "kl", "distinct_2"):
        assert all(r[key] not in ("", "nan") for r in rows), key
    assert (out / "final" / "policy" / "model.safetensors").is_file()


def test_cli_subcommand_help_names_the_one_kl_flag(capsys) -> None:
    from rlhf_gym.scripts.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train-ppo", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "--kl-coef" in out and "--init-kl-coef" not in out


@pytest.mark.parametrize("tracker", ["csv", "tensorboard"])
def test_report_to_writes_held_out_metrics_every_iteration(toy_like, tracker: str) -> None:
    from rlhf_gym.scripts.cli import main

    d, out = toy_like["dir"], toy_like["dir"] / f"run-{tracker}"
    status = main([
        "train-ppo", "--policy", str(d / "policy"), "--tokenizer", str(d / "tokenizer"),
        "--reward", "gold",
        "--prompts", str(d / "train.txt"), "--eval-prompts", str(d / "heldout.txt"),
        "--iterations", "3", "--num-envs", "4", "--max-new-tokens", "6", "--batch-size", "4",
        "--curve-samples", "2", "--device", "cpu", "--output-dir", str(out),
        "--report-to", tracker,
    ])
    assert status == 0
    if tracker == "csv":
        with open(out / "logs" / "progress.csv") as handle:
            rows = list(csv.DictReader(handle))
        columns = {k: [float(r[k]) for r in rows if r.get(k)] for k in rows[0]}
    else:
        columns = tensorboard_scalars(out / "logs")
    for key in ("eval/gold", "eval/proxy", "eval/kl"):
        assert len(columns[key]) == 4, (key, columns.get(key))  # iteration 0, then one per update
    assert len(columns["train/approxkl"] if "train/approxkl" in columns
               else columns["policy/approxkl"]) >= 3

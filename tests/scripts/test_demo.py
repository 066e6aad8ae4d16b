"""`rlhf-gym demo --quick` end to end, as a subprocess (CleanRL style), on a tiny toy world."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_quick_writes_a_consistent_report(tmp_path: Path) -> None:
    command = [
        sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick",
        "--output-dir", str(tmp_path / "runs" / "demo"), "--toy-dir", str(tmp_path / "toy"),
        "--device", "cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "demo"
    for name in ("report.md", "report.html", "summary.json", "reward_vs_kl.png", "length.png",
                 "diversity.png", "kl_coef.png"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["rm_accuracy"] <= 1.0
    assert 0.5 < summary["bayes_accuracy"] < 1.0
    history = summary["history"]
    assert [r["step"] for r in history] == [0, 1, 2]  # quick: 2 PPO iterations after the SFT row
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the SFT policy is the reference
    for record in history:
        assert all(math.isfinite(record[k]) for k in ("proxy", "gold", "kl", "response_length"))
    before, after = summary["before"], summary["after"]
    assert len(before["samples"]) == len(after["samples"]) == 16  # 8 held-out prompts x 2
    assert before["aggregates"]["kl_mean"] == pytest.approx(0.0, abs=1e-5)
    after_kls = [s["kl"] for s in after["samples"]]
    assert summary["final"]["kl"] == pytest.approx(sum(after_kls) / len(after_kls), rel=1e-6)
    assert summary["final"]["gold"] == pytest.approx(after["aggregates"]["gold_mean"])
    report = (run / "report.md").read_text()
    assert "Bayes ceiling" in report and "Sample completions" in report
    assert "report:" in result.stdout
    assert "eval_loss" not in result.stdout  # the Trainer's log dicts stay out of the demo


def test_demo_reads_a_config_file_and_flags_win(tmp_path: Path, capsys) -> None:
    from rlhf_gym.scripts.cli import build_parser, main

    settings = tmp_path / "demo.yaml"
    settings.write_text("iterations: 7\nkl-coef: 0.3\ncompare: true\n")
    argv = ["demo", "--config", str(settings), "--iterations", "3"]
    args = build_parser("demo").parse_args(argv)
    from rlhf_gym.scripts.cli import apply_config_file

    args = apply_config_file(args, argv[1:])
    assert (args.iterations, args.kl_coef, args.compare) == (3, 0.3, True)
    settings.write_text("iteration: 7\n")
    assert main(["demo", "--config", str(settings)]) == 2
    assert "unknown setting(s) iteration" in capsys.readouterr().err

"""`rlhf-gym demo --quick` end to end, as a subprocess (CleanRL style), on a tiny toy world."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rlhf_gym.evaluation.held_out import EvalResult
from rlhf_gym.evaluation.report import RunSummary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_quick_writes_a_consistent_report(tmp_path: Path) -> None:
    command = [
        sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick",
        "--output-dir", str(tmp_path / "runs" / "demo"), "--toy-dir", str(tmp_path / "toy"),
        "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "demo"
    names = ("report.md", "report.html", "summary.json", "reward_vs_kl.png", "length.png",
             "diversity.png", "kl_coef.png")  # fmt: skip
    for name in names:
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


def seed_run(shift: float, peak_at: int) -> RunSummary:
    """A summary whose gold rises to step ``peak_at`` then falls while the proxy keeps rising."""
    history = [{"step": i, "kl": float(i * i), "proxy": float(i) + shift, "gold_std": 1.0,
                "gold": shift + (i if i <= peak_at else 2 * peak_at - i), "response_length": 9.0}
               for i in range(5)]  # fmt: skip

    def result(gold: float, kl: float) -> EvalResult:
        return EvalResult(prompts=["p :"] * 2, completions=["a .", "b ."], scores=[gold, gold],
                          gold=[gold, gold], kl=[kl, kl], length=[2, 2], num_tokens=[3, 3],
                          ended=[True, True])  # fmt: skip

    return RunSummary(history=history, before=result(shift, 0.0), after=result(1 + shift, 16.0))


def test_compare_report_folds_seeds_into_the_frontier(tmp_path: Path) -> None:
    from rlhf_gym.scripts.demo_compare import write_comparison

    runs = {"baseline": [seed_run(0.0, 2), seed_run(0.5, 2)], "ensemble": [seed_run(0.0, 3)]}
    report = write_comparison(tmp_path, runs, title="mitigations").read_text()
    assert (tmp_path / "frontier.png").is_file() and (tmp_path / "rewards.png").is_file()
    assert not (tmp_path / "reward_vs_kl.png").exists()  # frontier.png replaces it
    figures = report.split("## Per-run figures")[1].split("## Final evaluation")[0]
    baseline = next(line for line in figures.splitlines() if line.startswith("| baseline"))
    # end gold 0 and 0.5, peak gold 2 and 2.5 (at KL 4), end gap (4 - 0) - (0 - 0) = 4 both
    assert "| 2 | 0.25 (0…0.5) | 2.25 (2…2.5) | 16 (16…16) | 4 (4…4) |" in baseline
    assert "| ensemble | 1 | 2 | 3 | 16 | 2 |" in figures  # one seed: the value alone
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gold_peak"]["baseline"] == [2.0, pytest.approx(2.25)]  # √KL 2, the mean
    assert len(summary["runs"]["baseline"]) == 2 and "frontier.png" in summary["plots"]


def test_seeds_need_compare(tmp_path: Path, capsys) -> None:
    from rlhf_gym.scripts.cli import main

    assert main(["demo", "--seeds", "2", "--output-dir", str(tmp_path / "out")]) == 2
    assert "--seeds 2 is for --compare" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_demo_compare_runs_every_configuration_on_each_seed(tmp_path: Path, jobs: int) -> None:
    out = tmp_path / "compare"
    command = [
        sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick", "--compare", "--seeds", "2",
        "--output-dir", str(out), "--toy-dir", str(tmp_path / "toy"), "--device", "cpu",
        "--jobs", str(jobs),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    configs = ["baseline", "length_debiased", "ensemble", "adaptive_kl"]
    for config in configs:
        for seed in (0, 1):
            run = json.loads((out / config / f"seed{seed}" / "summary.json").read_text())
            assert run["config"]["seed"] == seed
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["per_seed"]) == configs
    for config in configs:
        ends = [figures["end_gold"] for figures in summary["per_seed"][config]]
        assert len(ends) == 2 and all(math.isfinite(v) for v in ends)
    report = (out / "report.md").read_text()
    assert "![frontier.png](frontier.png)" in report and "## Final evaluation" in report
    assert (out / "frontier.png").is_file()
    if jobs > 1:  # each seed ran in a process of its own: its log and one-seed report stay
        for seed in (0, 1):
            assert "[demo] done" in (out / "seeds" / f"seed{seed}" / "run.log").read_text()
            assert not (out / "seeds" / f"seed{seed}" / "baseline").exists()  # moved


def test_jobs_need_compare(tmp_path: Path, capsys) -> None:
    from rlhf_gym.scripts.cli import main

    assert main(["demo", "--jobs", "2", "--output-dir", str(tmp_path / "out")]) == 2
    assert "--jobs 2 is for --compare" in capsys.readouterr().err

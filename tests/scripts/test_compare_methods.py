"""`rlhf-gym compare-methods --quick --seeds 2` end to end, as a subprocess, on a tiny toy world."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from rlhf_gym.evaluation.run_report import read_history
from rlhf_gym.scripts.cli import main

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["ppo", "ppo-critic", "grpo", "rloo", "dpo"]


def figures_table(report: str) -> dict[str, dict[str, str]]:
    """The per-run figures table of report.md: method -> {column title: cell}."""
    table = report.split("## Per-run figures")[1].split("##")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in table.splitlines() if line.startswith("| ")]  # fmt: skip
    header, *body = rows
    return {cells[0]: dict(zip(header[1:], cells[1:], strict=True)) for cells in body}


@pytest.mark.slow
def test_quick_two_seeds_compares_every_method_alike(tmp_path: Path) -> None:
    out = tmp_path / "compare"
    command = [
        sys.executable, str(ROOT / "scripts" / "compare_methods.py"), "--quick", "--seeds", "2",
        "--output-dir", str(out), "--toy-dir", str(tmp_path / "toy"), "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("report.md", "report.html", "summary.json", "frontier.png", "timing.json"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    rows = figures_table(report)
    assert list(rows) == METHODS
    for method, cells in rows.items():  # seeds, then "mean (min…max)" of every figure
        assert cells.pop("seeds") == "2", method
        # the quick world's gold is the same for every sample: no start std to count gain in
        assert cells.pop("best gold gain at KL ≤ 6 (start std)") == "n/a"
        means = [float(cell.split(" (")[0]) for cell in cells.values()]
        assert len(means) == 8 and all(math.isfinite(v) for v in means), (method, cells)
    per_seed = json.loads((out / "summary.json").read_text())["per_seed"]
    for method in METHODS:
        for figures in per_seed[method]:
            assert figures["wall_s"] > figures["train_s"] > 0
            assert figures["peak_rss_mib"] > 100  # torch alone is more than that

    for seed in (0, 1):  # one starting point and one evaluation: the same iteration-0 record
        starts = [read_history(out / m / f"seed{seed}")[0] for m in METHODS]
        assert all(s["kl"] == pytest.approx(0.0, abs=1e-6) for s in starts)
        assert all(s["proxy"] == pytest.approx(starts[0]["proxy"]) for s in starts)
    for method in METHODS[:4]:  # one budget: the start, then --iterations 2 rollouts of 8 rows
        assert [r["step"] for r in read_history(out / method / "seed1")] == [0, 1, 2]
    # PPO's critic: a head on the policy, or a separate copy of the reward model
    assert not (out / "ppo" / "seed0" / "final" / "policy" / "critic").exists()
    assert (out / "ppo-critic" / "seed0" / "final" / "policy" / "critic").is_dir()
    assert "| grpo | 256 token slots: 2 rollouts x 8 rows (2 prompts x 4) x 16" in report
    pairs = sum(1 for _ in next((tmp_path / "toy").iterdir()).joinpath("preferences.jsonl").open())
    dpo = json.loads((out / "dpo" / "seed0" / "train_dpo.json").read_text())
    assert dpo["metrics"]["train_pairs"] == pairs - round(0.1 * pairs)  # the RM's training split
    assert len(read_history(out / "dpo" / "seed0")) == 3  # start + --dpo-curve-points 2
    assert "| dpo | " in report.split("## Held-out samples")[1]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--methods", "ppo,a2c"], "name each of ppo, ppo-critic, grpo, rloo, dpo"),
        (["--num-envs", "6"], "--num-envs 6 is not a multiple of --group-size 4"),
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    assert main(["compare-methods", *flags, "--output-dir", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()

"""``rlhf-gym report``: any run folder, or several seeds folded into bands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rlhf_gym.evaluation.calibration import pair_calibration
from rlhf_gym.evaluation.plots import seed_band
from rlhf_gym.scripts.cli import main


def fake_run(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True)
    rows = [{"step": s, "proxy": 0.3 * s + seed, "gold": 0.2 * s - 0.1 * s * s + seed,
             "kl": 0.5 * s, "response_length": 10 + s, "distinct_2": 0.9,
             "objective/entropy": 20 - s, "policy/clipfrac": 0.1, "loss/value": 1.0 / (s + 1)}
            for s in range(4)]
    with open(folder / "curves.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_seed_band_is_the_per_step_mean_and_std() -> None:
    band = seed_band([[{"step": 0, "gold": 1.0}], [{"step": 0, "gold": 3.0}]])
    assert band == [{"step": 0.0, "seeds": 2.0, "gold": 2.0, "gold_std": 1.0}]


def test_calibration_of_a_model_that_is_always_sure_and_right() -> None:
    result = pair_calibration([20.0, 20.0, 20.0])
    assert result["accuracy"] == 1.0 and result["ece"] == pytest.approx(0.0, abs=1e-6)
    assert pair_calibration([0.0, 0.0])["ece"] == pytest.approx(0.0)  # p = 0.5, half won


def test_report_of_three_seeds_and_of_one_run(tmp_path: Path, capsys) -> None:
    runs = [fake_run(tmp_path / f"seed{s}", s) for s in range(3)]
    (runs[0] / "calibration.json").write_text(json.dumps(pair_calibration([1.0, -0.5, 2.0])))
    out = tmp_path / "report"
    assert main(["report", *map(str, runs), "--output-dir", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "3 run(s), folded into per-step means with ±1 std bands" in md and "ECE" in md
    for plot in ("reward_vs_kl.png", "rewards.png", "entropy.png", "clipfrac.png",
                 "value_loss.png", "calibration.png"):
        assert (out / plot).is_file(), plot
    summary = json.loads((out / "summary.json").read_text())
    assert summary["history"][3]["gold_std"] == pytest.approx(0.816496, rel=1e-5)
    assert main(["report", str(runs[1])]) == 0
    assert (runs[1] / "report.md").is_file()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err

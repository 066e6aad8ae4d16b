"""A report for any run folder, or several seeds of one: ``rlhf-gym report RUN [RUN ...]``.

A run folder holds its per-iteration history as ``curves.csv`` (``train-ppo``) or inside
``summary.json`` (``demo``), and may hold ``calibration.json`` (``train-rm``, ``demo``). Several
runs are read as seeds of one setting: their histories fold into per-step means with shaded
±1 std bands (:func:`~rlhf_gym.evaluation.plots.seed_band`), and the table lists each seed's
final numbers and the peak of the mean gold curve.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlhf_gym.evaluation.plots import plot_calibration, seed_band, write_plots
from rlhf_gym.evaluation.report import md_table, plot_section, write_files

FINAL_KEYS = ("proxy", "gold", "kl", "response_length", "distinct_2")


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_history(run: str | Path) -> list[dict[str, Any]]:
    """A run's per-iteration records from ``curves.csv`` or ``summary.json``.

    Raises:
        FileNotFoundError: when the folder has neither.
    """
    run = Path(run)
    if (run / "curves.csv").is_file():
        with open(run / "curves.csv", newline="", encoding="utf-8") as handle:
            return [{k: _number(v) for k, v in row.items() if v != ""}
                    for row in csv.DictReader(handle)]
    if (run / "summary.json").is_file():
        history = json.loads((run / "summary.json").read_text()).get("history")
        if history:
            return history
    raise FileNotFoundError(
        f"{run}: not found, or not a run folder (no curves.csv, no summary.json with a history)."
    )


def read_calibration(runs: Sequence[str | Path]) -> dict[str, Any] | None:
    """The first ``calibration.json`` among the runs (or their ``reward_model`` subfolder)."""
    for run in map(Path, runs):
        for path in (run / "calibration.json", run / "reward_model" / "calibration.json"):
            if path.is_file():
                return json.loads(path.read_text())
    return None


def _peak(history: Sequence[Mapping[str, Any]], key: str = "gold") -> tuple[Any, Any]:
    values = [(r[key], r.get("step")) for r in history
              if isinstance(r.get(key), float) and math.isfinite(r[key])]
    return max(values, key=lambda pair: pair[0]) if values else (None, None)


def write_run_report(runs: Sequence[str | Path], out_dir: str | Path, title: str) -> Path:
    """Write report.md/html, the plots (seed bands for several runs) and summary.json."""
    histories = {Path(run).name: read_history(run) for run in runs}
    folded = seed_band(list(histories.values())) if len(histories) > 1 else next(
        iter(histories.values()))
    out_dir = Path(out_dir)
    plots = write_plots({title: folded}, out_dir)
    calibration = read_calibration(runs)
    if calibration is not None:
        plots["calibration.png"] = plot_calibration(calibration, out_dir / "calibration.png")
    peak, at = _peak(folded)
    md = [f"# {title}", "", f"{len(histories)} run(s)" + (
        ", folded into per-step means with ±1 std bands." if len(histories) > 1 else "."), "",
          "## Final numbers", "",
          md_table(["run", *FINAL_KEYS], [[name, *(h[-1].get(k) for k in FINAL_KEYS)]
                                          for name, h in histories.items()]), "",
          f"Peak of the {'mean ' if len(histories) > 1 else ''}gold curve: {peak} at step {at}.",
          ""]
    if calibration is not None:
        md += ["## Reward model", "", md_table(
            ["held-out accuracy", "ECE"], [[calibration["accuracy"], calibration["ece"]]]), ""]
    md += plot_section(plots)
    summary = {"title": title, "runs": {n: h[-1] for n, h in histories.items()},
               "history": folded, "calibration": calibration, "plots": sorted(plots)}
    return write_files(out_dir, "\n".join(md), summary, title)

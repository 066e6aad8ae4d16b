"""Build the report of any run folder, or of several seeds of one setting.

Examples::

    rlhf-gym report runs/ppo                       # one train-ppo or demo run
    rlhf-gym report runs/seed0 runs/seed1 runs/seed2 --output-dir runs/report

Reads each run's ``curves.csv`` (train-ppo) or ``summary.json`` (demo), and a reward model's
``calibration.json`` when one is there; several runs become per-step means with ±1 std bands.
Writes report.md, report.html, the PNG plots (gold and proxy against √KL and over training,
KL, length, diversity, β, entropy, clip fraction, value loss, calibration) and summary.json.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args


@dataclass
class ReportConfig:
    """Settings of ``rlhf-gym report``."""

    output_dir: str = field(
        default="", metadata={"help": "folder of the report; empty: the (first) run's folder"}
    )
    title: str = field(default="RLHF run report", metadata={"help": "the report's title"})


CONFIG = ReportConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run folders, then the :class:`ReportConfig` options."""
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s); several: seeds")
    add_dataclass_arguments(parser, ReportConfig)


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from rlhf_gym.evaluation.run_report import write_run_report

    cfg = dataclass_from_args(ReportConfig, args)
    out = cfg.output_dir or args.runs[0]
    print(f"report: {write_run_report(args.runs, out, cfg.title)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/report.py RUN [RUN ...]``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.report", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Gold and proxy against √KL over several seeds per method: Gao et al. (2022)'s frontier.

``runs`` maps a method (or configuration) name to its seeds' histories. A history is the list of
per-iteration held-out records that ``train-ppo`` writes to ``curves.csv``, ``train-dpo
--curve-points`` writes likewise, and ``demo`` keeps in ``summary.json`` (keys ``kl``, ``gold``,
``gold_std``, ``proxy``, ...: docs/metrics.md). A seed's curve is read along training as a
function of √KL: its value at a √KL is interpolated linearly where training *first* reached that
√KL (for a KL that only grows this is plain interpolation; an adaptive controller can pull the
KL back, and the later visit is then not used), and it is blank below the first record and past
the largest KL the seed reached: nothing is extrapolated. A method's line is the mean over its
seeds where every seed has a value, its band the min..max over them there. A KL estimate below 0
(a sampling estimate of a KL near 0) counts as 0.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rlhf_gym.evaluation.report import RunSummary, md_table

History = Sequence[Mapping[str, Any]]
Runs = Mapping[str, Sequence[History]]
#: KL values (nats) at which "gold at equal KL" is read.
GOLD_AT_KL = (1.0, 2.0, 4.0, 6.0)
#: The KL budget (nats) of the "best gold gain" column (issue 17's 0.5 SFT std at KL ≤ 6).
GAIN_KL = 6.0
FRONTIER_PNG = "frontier.png"

FRONTIER_TEXT = (
    "Held-out gold (left) and proxy (right) against √KL to the reference, read along training. "
    "Line: the mean over seeds, drawn where every seed reached that KL (no extrapolation: a "
    "line ends where its seed with the least KL ends). Band: min..max over the seeds. ★: the "
    "peak of the mean gold line. Gold peaking while the proxy keeps rising is reward hacking."
)
GOLD_AT_TEXT = (
    "The seed-mean gold where each seed first reached the KL (nats); n/a where some seed never "
    "did. Compare runs across a row at one KL, not at one step."
)
FIGURES_TEXT = (
    "mean (min…max) over seeds, from each seed's curve. `end gap` = proxy gain − gold gain "
    "since the start (raw units; large means the policy learned what the reward model likes "
    "and the gold utility does not); `peak gold` = the seed's highest gold record; `best gold "
    f"gain` = the highest gold at KL ≤ {GAIN_KL:g} nats minus the start's, in units of the "
    "start's gold std over its samples; `train s` = training seconds, evaluations excluded."
)


def _finite(value: Any) -> bool:
    """A finite number (numpy scalars too); not None, NaN or text."""
    return isinstance(value, numbers.Real) and math.isfinite(float(value))


def sqrt_kl_curve(history: History, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(√KL, ``key``) of the records with a finite ``kl`` and ``key``, in training order."""
    rows = [(math.sqrt(max(float(r["kl"]), 0.0)), float(r[key])) for r in history
            if _finite(r.get("kl")) and _finite(r.get(key))]  # fmt: skip
    if not rows:
        return np.empty(0), np.empty(0)
    x, y = np.array(rows, dtype=float).T
    return x, y


def first_crossing(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``y`` interpolated where ``x``, followed in order, first reaches each value of ``at``.

    NaN where ``x`` never reaches the value, and below ``x[0]`` (no extrapolation).
    """
    out = np.full(len(at), np.nan)
    for j, target in enumerate(np.asarray(at, dtype=float)):
        reached = np.flatnonzero(x >= target)
        if not reached.size:
            continue
        i = int(reached[0])
        if i == 0:  # the first record is already past the target: only an exact hit counts
            out[j] = y[0] if x[0] == target else np.nan
            continue
        share = (target - x[i - 1]) / (x[i] - x[i - 1])  # x[i-1] < target <= x[i]
        out[j] = y[i - 1] + share * (y[i] - y[i - 1])
    return out


def seed_values(histories: Sequence[History], key: str, at: np.ndarray) -> np.ndarray:
    """``(seeds, len(at))``: each seed's ``key`` at the √KL values ``at`` (NaN: not reached)."""
    return np.array([first_crossing(*sqrt_kl_curve(h, key), at) for h in histories])


@dataclass(frozen=True)
class Band:
    """Seed mean, min and max of one key along a √KL grid (NaN where a seed has no value)."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def band(values: np.ndarray) -> Band:
    """Mean, min and max over the seeds (axis 0), only where every seed has a value."""
    complete = np.all(np.isfinite(values), axis=0)
    safe = np.where(complete, values, 0.0)

    def where_complete(stat: np.ndarray) -> np.ndarray:
        return np.where(complete, stat, np.nan)

    return Band(where_complete(safe.mean(0)), where_complete(safe.min(0)),
                where_complete(safe.max(0)))  # fmt: skip


def check_runs(runs: Runs) -> None:
    """Raise naming the run and seed whose history cannot be put on the √KL axis.

    Raises:
        ValueError: for no runs, a run without seeds, or a seed with no finite ``kl`` record.
    """
    if not runs:
        raise ValueError("the frontier needs at least one run (method name -> seed histories).")
    for name, histories in runs.items():
        if not histories:
            raise ValueError(f"run {name!r} has no seed histories.")
        for i, history in enumerate(histories):
            if not any(_finite(r.get("kl")) for r in history):
                raise ValueError(
                    f"run {name!r}, seed {i}: no record has a finite 'kl'; the frontier needs "
                    "the held-out KL of each iteration (curves.csv's kl column)."
                )


def common_grid(runs: Runs, points: int = 41) -> np.ndarray:
    """``points`` evenly spaced √KL values from 0 to the largest reached, and every record's own.

    The records' own √KL values keep each curve's ends and turns on the grid: a line reaches
    exactly as far as its shortest seed, and a peak that is a record is drawn where it is.
    """
    check_runs(runs)
    xs = [sqrt_kl_curve(h, "kl")[0] for histories in runs.values() for h in histories]
    top = max(float(x.max(initial=0.0)) for x in xs)
    return np.unique(np.concatenate([np.linspace(0.0, top, points), *xs]))


@dataclass(frozen=True)
class Frontier:
    """One method's seed bands on a common √KL grid.

    Attributes:
        grid: the √KL values (√nats).
        bands: key (``gold``, ``proxy``) -> its :class:`Band`.
        seeds: the number of seeds.
    """

    grid: np.ndarray
    bands: dict[str, Band]
    seeds: int


def frontier(
    histories: Sequence[History], grid: np.ndarray, keys: Sequence[str] = ("gold", "proxy")
) -> Frontier:
    """The seed bands of ``keys`` along ``grid`` (see the module doc for the rules)."""
    bands = {key: band(seed_values(histories, key, grid)) for key in keys}
    return Frontier(np.asarray(grid, dtype=float), bands, len(histories))


def peak(front: Frontier, key: str = "gold") -> tuple[float, float] | None:
    """(√KL, value) of the highest point of the seed-mean line, or None where it has none."""
    mean = front.bands[key].mean
    if not np.isfinite(mean).any():
        return None
    i = int(np.nanargmax(mean))
    return float(front.grid[i]), float(mean[i])


def at_kl(histories: Sequence[History], kls: Sequence[float], key: str = "gold") -> list[Any]:
    """Seed mean of ``key`` where each seed first reached each KL (nats); None unless all did."""
    mean = band(seed_values(histories, key, np.sqrt(np.asarray(kls, dtype=float)))).mean
    return [float(v) if math.isfinite(v) else None for v in mean]


def gold_gain(history: History, max_kl: float = GAIN_KL) -> float | None:
    """The best gold over the first record among records with KL ≤ ``max_kl``, in start stds.

    The first record is the starting policy (iteration 0) and its ``gold_std`` (the spread of
    gold over its held-out samples) is the unit; None without them.
    """
    start = history[0] if history else {}
    std = start.get("gold_std")
    within = [
        float(r["gold"])
        for r in history
        if _finite(r.get("gold")) and _finite(r.get("kl")) and float(r["kl"]) <= max_kl
    ]
    if not within or not _finite(start.get("gold")) or not _finite(std) or float(std) <= 0:
        return None
    return (max(within) - float(start["gold"])) / float(std)


def seed_figures(history: History) -> dict[str, float | None]:
    """One seed's end and peak figures from its curve.

    ``end_gap`` is :meth:`RunSummary.final`'s gap: (end − start proxy) − (end − start gold),
    raw units. ``peak_gold`` is the highest gold record (a max of noisy estimates, so biased
    up a little). ``train_s`` is the last record's ``seconds`` (training, evaluation excluded).
    """
    final = RunSummary(history=list(history)).final()
    golds = [float(r["gold"]) for r in history if _finite(r.get("gold"))]
    last = history[-1] if history else {}
    return {
        "end_gold": final["gold"], "peak_gold": max(golds) if golds else None,
        "end_kl": final["kl"], "end_proxy": final["proxy"], "end_gap": final["gap"],
        "gain_std": gold_gain(history), "train_s": last.get("seconds"),
    }  # fmt: skip


@dataclass(frozen=True)
class Spread:
    """Mean, min and max of one figure over the seeds that have it, and their number."""

    mean: float
    low: float
    high: float
    n: int

    def text(self) -> str:
        """``mean (min…max)``, or the value alone for one seed."""
        if self.n == 1:
            return f"{self.mean:.3g}"
        return f"{self.mean:.3g} ({self.low:.3g}…{self.high:.3g})"


def spread(values: Sequence[Any]) -> Spread | None:
    """The :class:`Spread` of the finite values, or None when there is none."""
    finite = [float(v) for v in values if _finite(v)]
    if not finite:
        return None
    return Spread(sum(finite) / len(finite), min(finite), max(finite), len(finite))


#: (per-seed figure, column title) of the figures table; callers may add their own figures.
FIGURE_COLUMNS: list[tuple[str, str]] = [
    ("end_gold", "end gold"),
    ("peak_gold", "peak gold"),
    ("end_kl", "end KL"),
    ("end_gap", "end gap (proxy − gold gain)"),
    ("gain_std", f"best gold gain at KL ≤ {GAIN_KL:g} (start std)"),
    ("train_s", "train s"),
]


def figures_table(
    per_seed: Mapping[str, Sequence[Mapping[str, Any]]], columns: Sequence[tuple[str, str]]
) -> str:
    """One markdown row per run: its seeds, then ``mean (min…max)`` of each figure."""
    rows = []
    for name, seeds in per_seed.items():
        cells = [spread([s.get(key) for s in seeds]) for key, _ in columns]
        rows.append([name, len(seeds), *(c.text() if c else None for c in cells)])
    return md_table(["run", "seeds", *(title for _, title in columns)], rows)


def plot_frontier(fronts: Mapping[str, Frontier], path: str | Path) -> Path:
    """Gold (left) and proxy (right) against √KL: seed-mean lines, min..max bands, gold peaks."""
    fig = Figure(figsize=(11, 4.4))
    for panel, (key, label) in enumerate([("gold", "gold utility"), ("proxy", "proxy (RM)")]):
        ax = fig.add_subplot(1, 2, panel + 1)
        for i, (name, front) in enumerate(fronts.items()):
            curve = front.bands.get(key)
            if curve is None or not np.isfinite(curve.mean).any():
                continue
            ax.plot(front.grid, curve.mean, "-", color=f"C{i}", label=f"{name} ({front.seeds})")
            ax.fill_between(front.grid, curve.low, curve.high, color=f"C{i}", alpha=0.2, lw=0)
            top = peak(front, key) if key == "gold" else None
            if top is not None:
                ax.plot(*top, "*", color=f"C{i}", ms=13, mec="black", mew=0.6)
        ax.set_xlabel("√KL(π ‖ π_ref)  [√nats]")
        ax.secondary_xaxis("top", functions=(np.square, lambda v: np.sqrt(np.maximum(v, 0))))
        ax.set_ylabel(label)
        ax.set_title(f"{label} vs √KL (top axis: KL in nats)" + ("; ★ peak" if panel == 0 else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="run (seeds)", title_fontsize=8)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return Path(path)


@dataclass(frozen=True)
class FrontierSection:
    """The frontier part of a report: markdown lines, the plot written, and the numbers."""

    markdown: list[str]
    plots: dict[str, Path]
    summary: dict[str, Any]


def _gold_at_table(runs: Runs, kls: Sequence[float]) -> tuple[str, dict[str, list[Any]]]:
    values = {name: at_kl(histories, kls) for name, histories in runs.items()}
    rows = [[name, len(runs[name]), *vals] for name, vals in values.items()]
    return md_table(["run", "seeds", *(f"gold at KL {k:g}" for k in kls)], rows), values


def frontier_section(
    runs: Runs,
    out_dir: str | Path,
    *,
    extra: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    extra_columns: Sequence[tuple[str, str]] = (),
    kls: Sequence[float] = GOLD_AT_KL,
    points: int = 41,
) -> FrontierSection:
    """Write ``frontier.png`` into ``out_dir``; return the report's frontier sections.

    Args:
        runs: run (method or configuration) name -> one history per seed.
        out_dir: where the plot goes.
        extra: more per-seed figures per run (say wall time and peak memory), in seed order.
        extra_columns: (figure, column title) of ``extra``'s figures, added to the table.
        kls: KL values (nats) of the gold-at-equal-KL table.
        points: √KL grid points of the lines.

    Raises:
        ValueError: for runs the frontier cannot read (see :func:`check_runs`), or ``extra``
            whose seeds do not match ``runs``.
    """
    grid = common_grid(runs, points)
    fronts = {name: frontier(histories, grid) for name, histories in runs.items()}
    path = plot_frontier(fronts, Path(out_dir) / FRONTIER_PNG)
    per_seed = {name: [seed_figures(h) for h in histories] for name, histories in runs.items()}
    for name, seeds in (extra or {}).items():
        if name not in per_seed or len(seeds) != len(per_seed[name]):
            raise ValueError(f"extra figures of {name!r} do not match its seed histories.")
        per_seed[name] = [{**a, **b} for a, b in zip(per_seed[name], seeds, strict=True)]
    gold_table, gold_at = _gold_at_table(runs, kls)
    md = ["## Gold and proxy against √KL", "", FRONTIER_TEXT, "",
          f"![{FRONTIER_PNG}]({FRONTIER_PNG})", "", "## Gold at equal KL", "", GOLD_AT_TEXT, "",
          gold_table, "", "## Per-run figures", "", FIGURES_TEXT, "",
          figures_table(per_seed, [*FIGURE_COLUMNS, *extra_columns]), ""]  # fmt: skip
    summary = {
        "sqrt_kl_grid": grid.tolist(),
        "frontier": {name: {key: {"mean": b.mean.tolist(), "min": b.low.tolist(),
                                  "max": b.high.tolist()} for key, b in f.bands.items()}
                     for name, f in fronts.items()},
        "gold_peak": {name: peak(f) for name, f in fronts.items()},
        "gold_at_kl": {"kl": list(kls), **gold_at},
        "per_seed": per_seed,
    }  # fmt: skip
    return FrontierSection(md, {FRONTIER_PNG: path}, summary)

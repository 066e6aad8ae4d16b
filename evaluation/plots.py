"""PNG plots of RLHF training histories (matplotlib's Agg canvas; pyplot's global state untouched).

A *history* is a list of per-iteration records (dicts) with any of the keys ``step``, ``proxy``,
``gold``, ``kl``, ``kl_coef``, ``response_length``, ``distinct_1``, ``distinct_2`` and the
agent's ``objective/entropy``, ``policy/clipfrac``, ``loss/value``; a plot skips the keys a
history lacks. Every function takes ``runs``, a mapping from run name to history, so one run
and a comparison of several share the code. :func:`seed_band` folds several seeds of one run
into one history of means with ``<key>_std`` companions, drawn as shaded bands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

History = Sequence[Mapping[str, Any]]
PROXY_COLOR, GOLD_COLOR = "tab:blue", "tab:orange"


def _series(history: History, key: str, x_key: str = "step") -> tuple[list[float], list[float]]:
    """(x, y) over the records that have a finite ``key``; x is ``x_key`` or the record index."""
    xs, ys = [], []
    for i, record in enumerate(history):
        value = record.get(key)
        if value is None or not math.isfinite(float(value)):
            continue
        x = record.get(x_key, i)
        if x_key == "kl":  # the over-optimisation axis: sqrt(KL), KL clipped at 0
            x = math.sqrt(max(float(x), 0.0))
        xs.append(float(x))
        ys.append(float(value))
    return xs, ys


def _band(history: History, key: str) -> list[float] | None:
    """The ``<key>_std`` companions of :func:`_series`'s points, or None without a band."""
    if not any(f"{key}_std" in record for record in history):
        return None
    return [float(r.get(f"{key}_std") or 0.0) for r in history
            if r.get(key) is not None and math.isfinite(float(r[key]))]


def _draw(ax: Any, history: History, key: str, x_key: str, fmt: str, **style: Any) -> None:
    """One line, with its seed band shaded when the history has one."""
    xs, ys = _series(history, key, x_key)
    ax.plot(xs, ys, fmt, ms=3, **style)
    band = _band(history, key)
    if band is not None and len(band) == len(ys):
        low = [y - b for y, b in zip(ys, band, strict=True)]
        high = [y + b for y, b in zip(ys, band, strict=True)]
        ax.fill_between(xs, low, high, alpha=0.2, color=style.get("color"))


def seed_band(histories: Sequence[History]) -> list[dict[str, float]]:
    """Per step, the mean of every numeric key over the seeds and its std as ``<key>_std``.

    Steps missing from some seeds use the seeds that have them.
    """
    by_step: dict[float, list[Mapping[str, Any]]] = {}
    for history in histories:
        for i, record in enumerate(history):
            by_step.setdefault(float(record.get("step", i)), []).append(record)
    folded = []
    for step in sorted(by_step):
        row: dict[str, float] = {"step": step, "seeds": float(len(by_step[step]))}
        keys = {k for r in by_step[step] for k, v in r.items() if isinstance(v, int | float)}
        for key in sorted(keys - {"step"}):
            values = [float(r[key]) for r in by_step[step]
                      if isinstance(r.get(key), int | float) and math.isfinite(float(r[key]))]
            if values:
                row[key] = sum(values) / len(values)
                row[f"{key}_std"] = math.sqrt(
                    sum((v - row[key]) ** 2 for v in values) / len(values))
        folded.append(row)
    return folded


def plot_calibration(calibration: Mapping[str, Any], path: str | Path) -> Path:
    """The reward model's reliability diagram: predicted vs observed win rate per bin."""
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.add_subplot()
    bins = calibration["bins"]
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    ax.plot([b["p"] for b in bins], [b["win_rate"] for b in bins], "o-", ms=4,
            color=PROXY_COLOR, label=f"reward model (ECE {calibration['ece']:.3f})")
    ax.set_xlabel("predicted P(chosen wins)")
    ax.set_ylabel("observed win rate")
    ax.set_title("Reward-model calibration (held-out pairs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return path


def plot_reward_vs_kl(runs: Mapping[str, History], path: str | Path) -> Path | None:
    """Proxy and gold reward against √KL (the Gao et al. 2022 over-optimisation curve).

    One run: proxy (left axis) and gold (right axis) on one chart, where gold peaking while
    proxy keeps rising is the picture of reward hacking. Several runs: a proxy panel and a
    gold panel with one line per run. Returns None when no history has both KL and a reward.
    """
    path = Path(path)
    if not any(_series(h, "proxy", "kl")[0] or _series(h, "gold", "kl")[0] for h in runs.values()):
        return None
    if len(runs) == 1:
        (name, history), = runs.items()
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        _draw(ax, history, "proxy", "kl", "o-", color=PROXY_COLOR, label="proxy")
        ax.set_ylabel("proxy (reward model)", color=PROXY_COLOR)
        twin = ax.twinx()
        _draw(twin, history, "gold", "kl", "s-", color=GOLD_COLOR, label="gold")
        twin.set_ylabel("gold utility", color=GOLD_COLOR)
        ax.set_xlabel("√KL(π ‖ π_ref)  [√nats]")
        ax.set_title(f"Reward vs KL: {name}")
        ax.grid(alpha=0.3)
        return _save(fig, path)
    fig = Figure(figsize=(11, 4.2))
    for panel, (key, label) in enumerate([("proxy", "proxy (reward model)"), ("gold", "gold")]):
        ax = fig.add_subplot(1, 2, panel + 1)
        for name, history in runs.items():
            _draw(ax, history, key, "kl", "o-", label=name)
        ax.set_xlabel("√KL(π ‖ π_ref)  [√nats]")
        ax.set_ylabel(label)
        ax.set_title(f"{label} vs KL")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_over_training(
    runs: Mapping[str, History],
    keys: Sequence[str],
    path: str | Path,
    *,
    ylabel: str,
    title: str,
) -> Path | None:
    """One line per (run, key) against ``step``; None when no history has any of the keys."""
    lines = [(name, key, h) for name, h in runs.items() for key in keys if _series(h, key)[0]]
    if not lines:
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, key, history in lines:
        label = " / ".join(p for p in (name if len(runs) > 1 else "", key if len(keys) > 1 else "")
                           if p)
        _draw(ax, history, key, "step", "o-", label=label or None)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize=8)
    return _save(fig, Path(path))


# (file name, history keys, y label, title) of the standard training plots.
TRAINING_PLOTS: list[tuple[str, tuple[str, ...], str, str]] = [
    ("rewards.png", ("proxy", "gold"), "reward", "Proxy and gold reward over training"),
    ("kl.png", ("kl",), "KL to reference [nats]", "KL over training"),
    ("length.png", ("response_length",), "mean completion length", "Completion length"),
    ("diversity.png", ("distinct_1", "distinct_2"), "distinct-n", "Diversity (distinct-n)"),
    ("kl_coef.png", ("kl_coef",), "KL coefficient β", "KL coefficient"),
    ("entropy.png", ("objective/entropy",), "entropy per episode [nats]", "Policy entropy"),
    ("clipfrac.png", ("policy/clipfrac",), "clip fraction", "PPO ratio clip fraction"),
    ("value_loss.png", ("loss/value",), "value loss", "Value loss"),
]


def write_plots(runs: Mapping[str, History], out_dir: str | Path) -> dict[str, Path]:
    """Write the over-optimisation plot and :data:`TRAINING_PLOTS` that have data.

    Returns:
        ``{file name: path}`` of the plots written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    path = plot_reward_vs_kl(runs, out_dir / "reward_vs_kl.png")
    if path is not None:
        written[path.name] = path
    for name, keys, ylabel, title in TRAINING_PLOTS:
        if len(runs) > 1 and keys == ("proxy", "gold"):
            keys, ylabel = ("gold",), "gold utility"  # overlaid runs: gold alone stays readable
            title = "Gold reward over training (proxy against KL: reward_vs_kl.png)"
        path = plot_over_training(runs, keys, out_dir / name, ylabel=ylabel, title=title)
        if path is not None:
            written[name] = path
    return written

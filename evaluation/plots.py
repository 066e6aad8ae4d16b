"""PNG plots of RLHF training histories (matplotlib's Agg canvas; pyplot's global state untouched).

A *history* is a list of per-iteration records (dicts) with any of the keys ``step``, ``proxy``,
``gold``, ``kl``, ``kl_coef``, ``response_length``, ``distinct_1``, ``distinct_2``; a plot
skips the keys a history lacks. Every function takes ``runs``, a mapping from run name to
history, so one run and a comparison of several share the code.
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
        ax.plot(*_series(history, "proxy", "kl"), "o-", color=PROXY_COLOR, ms=3, label="proxy")
        ax.set_ylabel("proxy (reward model)", color=PROXY_COLOR)
        twin = ax.twinx()
        twin.plot(*_series(history, "gold", "kl"), "s-", color=GOLD_COLOR, ms=3, label="gold")
        twin.set_ylabel("gold utility", color=GOLD_COLOR)
        ax.set_xlabel("√KL(π ‖ π_ref)  [√nats]")
        ax.set_title(f"Reward vs KL: {name}")
        ax.grid(alpha=0.3)
        return _save(fig, path)
    fig = Figure(figsize=(11, 4.2))
    for panel, (key, label) in enumerate([("proxy", "proxy (reward model)"), ("gold", "gold")]):
        ax = fig.add_subplot(1, 2, panel + 1)
        for name, history in runs.items():
            ax.plot(*_series(history, key, "kl"), "o-", ms=3, label=name)
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
    lines = [(name, key, _series(h, key)) for name, h in runs.items() for key in keys]
    lines = [line for line in lines if line[2][0]]
    if not lines:
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, key, (xs, ys) in lines:
        label = " / ".join(p for p in (name if len(runs) > 1 else "", key if len(keys) > 1 else "")
                           if p)
        ax.plot(xs, ys, "o-", ms=3, label=label or None)
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

"""``rlhf-gym demo --compare``: a baseline and each mitigation on the same seeds, in one report.

The baseline has a small fixed KL coefficient and a reward model trained on the verbosity-biased
labels; each mitigation changes one thing (a length-debiased reward, an ensemble of three reward
models scored mean − k·std, the adaptive KL controller). Every configuration runs on seeds
``seed`` .. ``seed + seeds - 1``, in ``<config>/seed<k>`` (with one seed, in ``<config>``).

In one process, the configurations of a seed share its reward models. With ``--jobs J`` > 1,
each seed's configurations run in a process of their own (``rlhf-gym demo --compare --seeds 1``),
``J`` at a time with ``--threads`` torch threads each, and their folders are moved into the same
layout. A process trains its own reward models, so the ensemble's extra members are trained once
per seed instead of once in all, which costs less than the cores it frees.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlhf_gym.scripts.demo_config import DemoConfig
from rlhf_gym.scripts.processes import Job, as_flags, child_env, run_jobs

#: ``run_one(cfg, artifacts, folder, trained)``: one configuration's reward model, PPO and report
#: (:func:`rlhf_gym.scripts.demo.run_one`); ``trained`` holds the reward models by seed.
RunOne = Callable[[DemoConfig, Any, Path, dict[int, Any]], Path]

TITLE = "RLHF on the toy world: mitigations"


def compare_configs(cfg: DemoConfig) -> dict[str, DemoConfig]:
    """Baseline (low fixed beta, verbosity-biased labels) and each mitigation, same seeds."""
    base = dataclasses.replace(cfg, compare=False, kl_coef=0.02, adaptive_kl=False)
    return {
        "baseline": base,
        "length_debiased": dataclasses.replace(base, length_debias=True),
        "ensemble": dataclasses.replace(base, ensemble=3),
        "adaptive_kl": dataclasses.replace(base, kl_coef=0.1, adaptive_kl=True),
    }


def run_comparison(cfg: DemoConfig, artifacts: Any, out: Path, run_one: RunOne) -> Path:
    """Every configuration of :func:`compare_configs` on each seed, then one report."""
    from rlhf_gym.evaluation.report import RunSummary

    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    if cfg.jobs > 1 and len(seeds) > 1:
        run_seeds_apart(cfg, seeds, out)
    else:
        trained: dict[int, Any] = {}
        for name, base in compare_configs(cfg).items():
            for seed in seeds:
                run_one(dataclasses.replace(base, seed=seed), artifacts,
                        run_folder(out, name, seed, len(seeds)), trained)  # fmt: skip
    runs = {name: [RunSummary.from_json(run_folder(out, name, s, len(seeds))) for s in seeds]
            for name in compare_configs(cfg)}  # fmt: skip
    return write_comparison(out, runs, title=TITLE)


def run_folder(out: Path, name: str, seed: int, num_seeds: int) -> Path:
    """Where configuration ``name`` on ``seed`` is written."""
    return out / name if num_seeds == 1 else out / name / f"seed{seed}"


def run_seeds_apart(cfg: DemoConfig, seeds: list[int], out: Path) -> None:
    """Each seed's comparison in a process of its own, ``cfg.jobs`` at a time.

    A seed's process writes to ``out/seeds/seed<k>`` (its log and one-seed report stay there);
    its runs then move to ``out/<config>/seed<k>``, replacing an earlier run there. The caller
    has built the toy world already, so the processes load it from the cache rather than each
    building it.

    Raises:
        RuntimeError: when a process fails, with the end of its log.
    """
    folders = {seed: out / "seeds" / f"seed{seed}" for seed in seeds}
    jobs = []
    for seed, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        flags = {**dataclasses.asdict(cfg), "seed": seed, "seeds": 1, "jobs": 1,
                 "output_dir": folder}  # fmt: skip
        jobs.append(Job(("demo --compare", seed), ["demo", *as_flags(flags)], folder / "run.log"))
    run_jobs(jobs, cfg.jobs, child_env(cfg.threads, cfg.device), prefix="[demo]")
    for seed, folder in folders.items():
        for name in compare_configs(cfg):
            target = run_folder(out, name, seed, len(seeds))
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            (folder / name).rename(target)


def write_comparison(out: Path, runs: dict[str, list[Any]], title: str) -> Path:
    """The comparison report: the frontier over seeds, the final evaluations, training plots.

    Args:
        out: the report's folder.
        runs: configuration name -> one :class:`RunSummary` per seed.
        title: the report's title.
    """
    from rlhf_gym.evaluation.frontier import frontier_section, spread
    from rlhf_gym.evaluation.plots import seed_band, write_plots
    from rlhf_gym.evaluation.report import md_table, plot_section, write_files

    histories = {name: [s.history for s in seeds] for name, seeds in runs.items()}
    section = frontier_section(histories, out)
    plots = write_plots({n: seed_band(h) if len(h) > 1 else h[0] for n, h in histories.items()},
                        out)  # fmt: skip
    overlaid = plots.pop("reward_vs_kl.png", None)  # per-step KL means: frontier.png replaces it
    if overlaid is not None:
        overlaid.unlink()
    columns = ["proxy", "gold", "gap", "kl", "length", "distinct_2"]
    finals = {name: [s.final() for s in seeds] for name, seeds in runs.items()}
    rows = [[name, *((c.text() if (c := spread([f[k] for f in fs])) else None) for k in columns)]
            for name, fs in finals.items()]  # fmt: skip
    md = [f"# {title}", "", *section.markdown, "## Final evaluation", "",
          "Each run's final policy on the held-out prompts (`--eval-samples` per prompt), mean "
          "(min…max) over seeds; `gap` as above, from the evaluations before and after.", "",
          md_table(["run", *columns], rows), "", *plot_section(plots)]  # fmt: skip
    summary = {"title": title, **section.summary,
               "runs": {name: [{"final": s.final(), "config": s.config, "history": s.history}
                               for s in seeds] for name, seeds in runs.items()},
               "plots": sorted({**plots, **section.plots})}  # fmt: skip
    return write_files(out, "\n".join(md), summary, title)

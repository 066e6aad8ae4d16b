"""Compare PPO, GRPO, RLOO and DPO on the toy world over several seeds, in one report.

Per seed, one reward model is trained (as ``demo`` trains it); then each method runs as a process
of its own from the same SFT policy (every method's reference): ``train-ppo --algo ppo|grpo|rloo``
against that reward model (``ppo-critic``: PPO with a copy of the reward model as its critic)
with one budget of token slots (``--iterations`` x ``--num-envs`` x ``--max-new-tokens``; GRPO's
and RLOO's groups are rows of ``--num-envs``), and ``train-dpo`` on the reward model's pairs (the
same seeded split). One held-out evaluation measures all (``--curve-samples`` per prompt; proxy =
the seed's reward model, gold, KL to the SFT) after each RL iteration and at
``--dpo-curve-points`` DPO steps. Wall time is the parent's clock, peak memory each process's own
(:func:`rlhf_gym.scripts.processes.measured`). Runs go to ``OUTPUT_DIR/<method>/seed<k>``, the
report beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.envs.rewards import DEFAULT_KL_COEF
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from rlhf_gym.scripts.processes import PROC_STATUS, Job, Usage, as_flags, child_env, run_jobs

METHODS = ("ppo", "ppo-critic", "grpo", "rloo", "dpo")


@dataclass
class CompareMethodsConfig:
    """Command-line settings of ``rlhf-gym compare-methods``."""

    output_dir: str = field(default="runs/compare_methods", metadata={"help": "report folder"})
    quick: bool = field(default=False, metadata={"help": "tiny budgets everywhere (for tests)"})
    methods: str = field(default=",".join(METHODS), metadata={"help": "comma-separated"})
    seeds: int = field(default=3, metadata={"help": "seeds per method", "min": 1})
    seed: int = field(default=0, metadata={"help": "first seed (then seed+1, ...)"})
    world_seed: int = field(default=0, metadata={"help": "seed of the toy world"})
    toy_dir: str = field(default="", metadata={"help": "toy-world cache root; empty: its default"})
    num_pairs: int = field(default=6000, metadata={"help": "labelled preference pairs", "min": 2})
    rm_epochs: float = field(default=2, metadata={"help": "reward-model epochs", "min": 0.0})
    norm_samples: int = field(default=2048, metadata={"help": "SFT samples: RM scale", "min": 2})
    iterations: int = field(default=20, metadata={"help": "RL iterations", "min": 1})
    num_envs: int = field(default=32, metadata={"help": "RL rollout rows", "min": 1})
    max_new_tokens: int = field(default=48, metadata={"help": "completion budget", "min": 1})
    group_size: int = field(default=4, metadata={"help": "GRPO/RLOO group size", "min": 2})
    learning_rate: float = field(default=1e-4, metadata={"help": "RL learning rate", "min": 0.0})
    batch_size: int = field(default=8, metadata={"help": "RL sequences per minibatch", "min": 1})
    kl_coef: float = field(
        default=DEFAULT_KL_COEF, metadata={"help": "PPO, RLOO: starting beta", "min": 0.0}
    )
    kl_target: float = field(
        default=6.0, metadata={"help": "PPO, RLOO: adaptive KL target (nats)", "min": 1e-9}
    )
    grpo_beta: float = field(default=0.04, metadata={"help": "GRPO: loss's beta", "min": 0.0})
    dpo_beta: float = field(default=0.5, metadata={"help": "DPO: beta", "min": 0.0})
    dpo_learning_rate: float = field(default=5e-4, metadata={"help": "DPO: lr", "min": 0.0})
    dpo_epochs: float = field(default=2.0, metadata={"help": "DPO: epochs", "min": 0.0})
    dpo_curve_points: int = field(
        default=8, metadata={"help": "DPO: held-out evaluations along training", "min": 1}
    )
    curve_samples: int = field(
        default=8, metadata={"help": "held-out samples per prompt at each evaluation", "min": 1}
    )
    samples: int = field(default=3, metadata={"help": "prompts sampled in the report", "min": 1})
    jobs: int = field(default=2, metadata={"help": "runs at once", "min": 1})
    threads: int = field(default=1, metadata={"help": "torch threads a run; 0: torch's", "min": 0})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})


#: ``--quick``: tiny budgets on demo's small quick world (its cache entry).
QUICK = {"num_pairs": 200, "rm_epochs": 1, "norm_samples": 64, "iterations": 2, "num_envs": 8,
         "max_new_tokens": 16, "batch_size": 4, "dpo_curve_points": 2, "curve_samples": 2,
         "samples": 2}  # fmt: skip
CONFIG = CompareMethodsConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`CompareMethodsConfig` field."""
    add_dataclass_arguments(parser, CompareMethodsConfig)


def methods_of(cfg: CompareMethodsConfig) -> list[str]:
    """The ``--methods`` list, checked before any work.

    Raises:
        ValueError: for an unknown or repeated method, or rows that do not split into groups.
        OSError: off Linux, where a run's peak memory cannot be read.
    """
    names = [m.strip() for m in cfg.methods.split(",") if m.strip()]
    unknown = sorted(set(names) - set(METHODS))
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"--methods {cfg.methods!r}: name each of {', '.join(METHODS)} once.")
    if not Path(PROC_STATUS).is_file():
        raise OSError(f"no {PROC_STATUS}: compare-methods reads peak memory there (Linux only).")
    if {"grpo", "rloo"} & set(names) and cfg.num_envs % cfg.group_size:
        raise ValueError(f"--num-envs {cfg.num_envs} is not a multiple of --group-size "
                         f"{cfg.group_size}: GRPO and RLOO take whole groups.")  # fmt: skip
    return names


def write_prompts(artifacts: Any, out: Path) -> dict[str, Path]:
    """The SFT folder, the pairs, and the prompts as text files (one a line) for the runs."""
    folder = out / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("\n".join(artifacts.world.train_prompts) + "\n")
    (folder / "heldout.txt").write_text("\n".join(artifacts.world.heldout_prompts) + "\n")
    return {"sft": artifacts.sft_dir, "pairs": artifacts.preferences_path,
            "train": folder / "train.txt", "heldout": folder / "heldout.txt"}  # fmt: skip


def demo_config(cfg: CompareMethodsConfig, seed: int) -> Any:
    """The demo settings its toy-world and reward-model stages read."""
    from rlhf_gym.scripts.demo_config import DemoConfig

    return DemoConfig(quick=cfg.quick, seed=seed, world_seed=cfg.world_seed, toy_dir=cfg.toy_dir,
                      num_pairs=cfg.num_pairs, rm_epochs=cfg.rm_epochs,
                      norm_samples=cfg.norm_samples, max_new_tokens=cfg.max_new_tokens,
                      device=cfg.device)  # fmt: skip


def train_reward_models(cfg: CompareMethodsConfig, artifacts: Any, out: Path) -> dict[int, Any]:
    """One reward model per seed, trained and checked as demo does, saved for the runs."""
    from rlhf_gym.scripts.demo import train_reward

    figures = {}
    for seed in seeds_of(cfg):
        print(f"[compare] reward model, seed {seed}", flush=True)
        rm, figures[seed] = train_reward(demo_config(cfg, seed), artifacts, seed)
        folder = out / "reward_models" / f"seed{seed}"
        rm.save_pretrained(folder)
        calibration = figures[seed].pop("calibration")  # its bins, for `rlhf-gym report`
        (folder / "calibration.json").write_text(json.dumps(calibration))
    return figures


def seeds_of(cfg: CompareMethodsConfig) -> list[int]:
    """``--seed`` .. ``--seed + --seeds - 1``."""
    return [cfg.seed + i for i in range(cfg.seeds)]


def command(cfg: CompareMethodsConfig, method: str, seed: int, world: dict[str, Path],
            out: Path) -> list[str]:  # fmt: skip
    """One run's ``rlhf-gym`` arguments: ``train-ppo --algo method`` or ``train-dpo``.

    ``--reward gold`` beside ``--reward-model`` makes gold a curve column (the model is the
    reward). DPO's pairs are the reward model's: the same file, split with the same seed.
    """
    from rlhf_gym.training.sources import TOY_PROMPT_TOKENS

    flags: dict[str, Any] = {
        "policy": world["sft"], "eval_prompts": world["heldout"], "reward": "gold",
        "reward_model": out / "reward_models" / f"seed{seed}", "seed": seed,
        "output_dir": out / method / f"seed{seed}", "max_new_tokens": cfg.max_new_tokens,
        "curve_samples": cfg.curve_samples,
    }  # fmt: skip
    if method == "dpo":
        flags.update(preferences=world["pairs"], kl_coef=cfg.dpo_beta, eval_samples=0,
                     learning_rate=cfg.dpo_learning_rate, dpo_epochs=cfg.dpo_epochs,
                     curve_points=cfg.dpo_curve_points, print_logs=False)  # fmt: skip
        return ["train-dpo", *as_flags(flags)]
    algo = "ppo" if method.startswith("ppo") else method
    if method == "ppo-critic":
        flags["critic"] = flags["reward_model"]
    flags.update(algo=algo, prompts=world["train"], max_prompt_tokens=TOY_PROMPT_TOKENS,
                 iterations=cfg.iterations, num_envs=cfg.num_envs, batch_size=cfg.batch_size,
                 learning_rate=cfg.learning_rate, device=cfg.device, kl_target=cfg.kl_target,
                 kl_coef=cfg.grpo_beta if method == "grpo" else cfg.kl_coef,
                 adaptive_kl=method != "grpo")  # fmt: skip
    if algo != "ppo":
        flags["group_size"] = cfg.group_size
    return ["train-ppo", *as_flags(flags)]


def plan(cfg: CompareMethodsConfig, methods: list[str], world: dict[str, Path],
         out: Path) -> list[Job]:  # fmt: skip
    """Every (method, seed) run, and the idle child."""
    jobs = []
    for method in methods:
        for seed in seeds_of(cfg):
            (out / method / f"seed{seed}").mkdir(parents=True, exist_ok=True)
            log = out / method / f"seed{seed}" / "run.log"
            jobs.append(Job((method, seed), command(cfg, method, seed, world, out), log))
    return [*jobs, Job(("idle", 0), [], out / "idle.log")]


def sample_rows(cfg: CompareMethodsConfig, artifacts: Any, out: Path,
                methods: list[str]) -> list[list[Any]]:  # fmt: skip
    """One held-out completion per prompt of the SFT and each method's first seed, scored alike."""
    from rlhf_gym.evaluation.held_out import evaluate_policy
    from rlhf_gym.reward_models import load_reward_model
    from rlhf_gym.toy import GoldUtility
    from rlhf_gym.training.outputs import find_policy

    tokenizer = artifacts.load_tokenizer()
    rm = load_reward_model(out / "reward_models" / f"seed{cfg.seed}", policy_tokenizer=tokenizer)
    policies = {"sft": str(artifacts.sft_dir)}
    policies.update({m: find_policy(out / m / f"seed{cfg.seed}") for m in methods})
    prompts = artifacts.world.heldout_prompts[: cfg.samples]  # at most the 8 there are
    alike = {"gold": GoldUtility(), "reference": str(artifacts.sft_dir), "seed": cfg.seed,
             "max_new_tokens": cfg.max_new_tokens, "device": cfg.device}  # fmt: skip
    results = {n: evaluate_policy(p, tokenizer, prompts, rm, **alike) for n, p in policies.items()}
    return [[r.prompts[i], name, r.completions[i], r.scores[i], r.gold[i], r.kl[i]]
            for i in range(len(prompts)) for name, r in results.items()]  # fmt: skip


def budget_row(cfg: CompareMethodsConfig, method: str, out: Path) -> list[Any]:
    """What a method was given: token slots (RL) or training pairs (DPO), and its KL."""
    if method == "dpo":
        record = json.loads((out / "dpo" / f"seed{cfg.seed}" / "train_dpo.json").read_text())
        pairs = record["metrics"]["train_pairs"]
        return [method, f"{pairs} pairs (the RM's training split) x {cfg.dpo_epochs:g} epochs",
                f"beta {cfg.dpo_beta:g} (implicit), lr {cfg.dpo_learning_rate:g}"]  # fmt: skip
    k = 1 if method.startswith("ppo") else cfg.group_size
    slots = cfg.num_envs * cfg.max_new_tokens * cfg.iterations
    kl = (f"beta {cfg.grpo_beta:g}, k3 in the loss" if method == "grpo" else
          f"beta from {cfg.kl_coef:g} in the reward, adaptive to KL {cfg.kl_target:g}")  # fmt: skip
    return [method, f"{slots} token slots: {cfg.iterations} rollouts x {cfg.num_envs} rows "
            f"({cfg.num_envs // k} prompts x {k}) x {cfg.max_new_tokens}, lr "
            f"{cfg.learning_rate:g}", kl]  # fmt: skip


def write_comparison(cfg: CompareMethodsConfig, out: Path, methods: list[str], artifacts: Any,
                     usage: dict[tuple[str, int], Usage], rm: dict[int, Any]) -> Path:  # fmt: skip
    """The report: budgets, frontier, gold at equal KL, figures, reward models, samples."""
    from rlhf_gym.evaluation.frontier import frontier_section
    from rlhf_gym.evaluation.report import md_table, write_files
    from rlhf_gym.evaluation.run_report import read_history

    idle = usage[("idle", 0)].peak_rss_mib
    extra = {m: [{"wall_s": usage[m, s].wall_s, "peak_rss_mib": usage[m, s].peak_rss_mib,
                  "over_idle_mib": usage[m, s].peak_rss_mib - idle} for s in seeds_of(cfg)]
             for m in methods}  # fmt: skip
    columns = [("wall_s", "wall s"), ("peak_rss_mib", "peak RSS MiB"),
               ("over_idle_mib", "RSS over idle MiB")]  # fmt: skip
    runs = {m: [read_history(out / m / f"seed{s}") for s in seeds_of(cfg)] for m in methods}
    section = frontier_section(runs, out, extra=extra, extra_columns=columns)
    rm_rows = [[s, f["rm_accuracy"], f["bayes_accuracy"], f.get("spearman_gold"), f["rm_seconds"]]
               for s, f in rm.items()]  # fmt: skip
    title = "PPO, GRPO, RLOO and DPO on the toy world"
    md = [f"# {title}", "", f"{cfg.seeds} seed(s) from {cfg.seed}, each method from the same "
          "SFT policy (also the reference), evaluated alike on the held-out prompts; "
          f"{cfg.jobs} run(s) at once, {cfg.threads or 'default'} thread(s) each. An idle child "
          f"with the same libraries peaks at {idle:.0f} MiB.", "", "## Budgets", "",
          md_table(["method", "budget", "KL"], [budget_row(cfg, m, out) for m in methods]), "",
          *section.markdown, "## Reward models (one per seed)", "",
          md_table(["seed", "held-out accuracy", "Bayes ceiling", "Spearman with gold", "s"],
                   rm_rows), "", "## Held-out samples (first seed)", "",
          md_table(["prompt", "policy", "completion", "proxy", "gold", "KL"],
                   sample_rows(cfg, artifacts, out, methods)), "", "## Settings", "",
          md_table(["setting", "value"], sorted(dataclasses.asdict(cfg).items())), ""]  # fmt: skip
    summary = {"title": title, "config": dataclasses.asdict(cfg), "idle_rss_mib": idle,
               "reward_models": rm, **section.summary}  # fmt: skip
    return write_files(out, "\n".join(md), summary, title)


def run(args: argparse.Namespace) -> int:
    """Reward models, then every (method, seed) run as a child process, then the report."""
    from rlhf_gym.scripts.demo import build_world

    cfg = dataclass_from_args(CompareMethodsConfig, args)
    if cfg.quick:
        cfg = dataclasses.replace(cfg, **QUICK)
    methods = methods_of(cfg)  # a bad list fails here, before any work
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock = [time.perf_counter()]

    def lap() -> float:  # seconds since the previous lap, for timing.json
        clock.append(time.perf_counter())
        return round(clock[-1] - clock[-2], 1)

    print("[compare] toy world", flush=True)
    artifacts = build_world(demo_config(cfg, cfg.seed))
    world = write_prompts(artifacts, out)
    timing = {"world_s": lap()}
    rm = train_reward_models(cfg, artifacts, out)
    timing["reward_models_s"] = lap()
    jobs = plan(cfg, methods, world, out)
    print(f"[compare] {len(jobs) - 1} runs, {cfg.jobs} at once", flush=True)
    usage = run_jobs(jobs, cfg.jobs, child_env(cfg.threads, cfg.device))
    timing["runs_s"] = lap()
    report = write_comparison(cfg, out, methods, artifacts, usage, rm)
    timing.update(report_s=lap(), seconds=round(clock[-1] - clock[0], 1))
    (out / "timing.json").write_text(json.dumps(timing))
    print(f"[compare] done in {timing['seconds']:.0f} s; report: {report}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/compare_methods.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.compare_methods", argv)


if __name__ == "__main__":
    sys.exit(main())

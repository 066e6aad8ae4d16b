"""Run the whole RLHF pipeline on the toy world and write ``runs/<name>/report.md``.

Stages, each with a progress bar: build (or load from cache) the toy world; train a
Bradley-Terry reward model on the simulated labeler's preferences between SFT samples; run PPO
from the SFT policy against that reward model, with the failure-mode monitors attached; evaluate
before and after on held-out prompts against the known gold utility; write the report.

``--compare`` runs a baseline and the mitigations (length-debiased reward, a reward-model
ensemble scored mean − k·std) on the same seeds and puts them side by side in one report: gold
and proxy against √KL with seed bands and the gold peak marked, gold at equal KL, and per
configuration the seed-mean end gold, peak gold and end proxy-minus-gold gap with their spread
(:mod:`rlhf_gym.evaluation.frontier`). ``--seeds N`` runs each configuration on seeds ``seed`` ..
``seed + N - 1`` (in ``<config>/seed<k>``; with one seed, in ``<config>``); ``--jobs J`` runs
``J`` seeds at once, each in a process of its own (:mod:`rlhf_gym.scripts.demo_compare`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from rlhf_gym.scripts.demo_config import QUICK, DemoConfig

CONFIG = DemoConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`DemoConfig` field."""
    add_dataclass_arguments(parser, DemoConfig)


def build_world(cfg: DemoConfig) -> Any:
    """The toy world's artifacts; ``--quick`` builds a small one (its own cache entry)."""
    from rlhf_gym.toy import SFTConfig, build_toy_world

    sft = SFTConfig(steps=60, n_embd=32, n_layer=1, n_head=2) if cfg.quick else None
    return build_toy_world(
        cfg.toy_dir or None, seed=cfg.world_seed, num_pairs=cfg.num_pairs, sft_config=sft
    )


def train_reward(cfg: DemoConfig, artifacts: Any, seed: int) -> tuple[Any, dict[str, float]]:
    """Train, normalise and check one reward model; returns it with its figures.

    The scale is fitted on ``cfg.norm_samples`` SFT samples and checked on as many fresh ones.
    """
    from rlhf_gym.evaluation.calibration import reward_model_calibration
    from rlhf_gym.reward_models import RewardTrainingConfig, normalise_on_policy, train_reward_model
    from rlhf_gym.toy import GoldUtility, SimulatedLabeler

    start = time.perf_counter()
    rm, metrics, held_out = train_reward_model(
        artifacts.sft_dir,
        artifacts.preferences_path,
        tokenizer=artifacts.load_tokenizer(),
        config=RewardTrainingConfig(seed=seed, rm_epochs=cfg.rm_epochs, print_logs=False),
    )
    world = artifacts.world
    checks = normalise_on_policy(
        rm,
        artifacts.load_sft_model(),
        world.train_prompts,
        max_new_tokens=cfg.max_new_tokens,
        seed=seed,
        gold=GoldUtility(),
        fit_samples=cfg.norm_samples,
        check_samples=cfg.norm_samples,
    )
    triples = [(p.prompt, p.chosen, p.rejected) for p in held_out]
    figures = {
        "rm_accuracy": metrics["eval_accuracy"],
        "calibration": reward_model_calibration(rm, held_out),
        "bayes_accuracy": SimulatedLabeler(world).bayes_accuracy(triples),
        "rm_seconds": time.perf_counter() - start,
        **checks,
    }
    return rm, figures


def build_reward(cfg: DemoConfig, artifacts: Any, trained: dict[int, Any]) -> Any:
    """The proxy reward for ``cfg``: one RM, an ensemble, and/or length-debiased."""
    from rlhf_gym.reward_models import LengthDebiasedReward, RewardEnsemble
    from rlhf_gym.toy import sample_completions

    seeds = [cfg.seed + i for i in range(max(cfg.ensemble, 1))]
    for seed in seeds:
        if seed not in trained:
            trained[seed] = train_reward(cfg, artifacts, seed)
    members = [trained[s][0] for s in seeds]
    reward = (
        members[0]
        if len(members) == 1
        else RewardEnsemble(members, aggregate="mean_minus_std", k=cfg.ensemble_k)
    )
    if cfg.length_debias:
        prompts = artifacts.world.train_prompts * 8
        completions = sample_completions(
            artifacts.load_sft_model().eval(),
            artifacts.load_tokenizer(),
            prompts,
            seed=cfg.seed + 3,
            max_new_tokens=cfg.max_new_tokens,
        )
        reward = LengthDebiasedReward.fit(reward, prompts, completions)
    return reward


def run_ppo(cfg: DemoConfig, artifacts: Any, reward: Any) -> tuple[Any, list[dict[str, Any]]]:
    """PPO from the SFT policy against ``reward``, with the monitors attached."""
    from rlhf_gym.evaluation.monitors import default_monitors
    from rlhf_gym.toy import GoldUtility
    from rlhf_gym.training.builders import build_agent, build_env, build_evaluation
    from rlhf_gym.training.config import TrainPPOConfig
    from rlhf_gym.training.loop import run_iterations
    from rlhf_gym.training.sources import PPOSources

    ppo_cfg = TrainPPOConfig(
        seed=cfg.seed,
        iterations=cfg.iterations,
        num_envs=cfg.num_envs,
        max_new_tokens=cfg.max_new_tokens,
        learning_rate=cfg.learning_rate,
        kl_coef=cfg.kl_coef,
        adaptive_kl=cfg.adaptive_kl,
        kl_target=cfg.kl_target,
        kl_horizon=cfg.kl_horizon,
        ref_refresh_every=cfg.ref_refresh_every,
        device=cfg.device,
        batch_size=4 if cfg.quick else 8,
        curve_samples=cfg.curve_samples,
    )
    gold = GoldUtility()
    sources = PPOSources(
        policy=str(artifacts.sft_dir),
        reference=str(artifacts.sft_dir),
        tokenizer=artifacts.load_tokenizer(),
        prompts=artifacts.world.train_prompts,
        eval_prompts=artifacts.world.heldout_prompts,
        gold=gold,
        toy=True,
    )
    env = build_env(ppo_cfg, sources, reward)
    agent = build_agent(ppo_cfg, sources, env)
    evaluation = build_evaluation(
        ppo_cfg, sources, reward, env, log=lambda line: print(f"  ppo {line}", flush=True)
    )
    history = run_iterations(
        agent, cfg.iterations, evaluation, callbacks=default_monitors(gold.score)
    )
    return agent, history


def evaluate_held_out(cfg: DemoConfig, artifacts: Any, policy: Any, reward: Any, seed: int) -> Any:
    """Held-out evaluation against the reward, the gold utility and the SFT reference."""
    from rlhf_gym.evaluation.held_out import evaluate_policy
    from rlhf_gym.toy import GoldUtility

    return evaluate_policy(
        policy,
        artifacts.load_tokenizer(),
        artifacts.world.heldout_prompts,
        reward,
        gold=GoldUtility(),
        reference=artifacts.load_sft_model(),
        num_samples_per_prompt=cfg.eval_samples,
        max_new_tokens=cfg.max_new_tokens,
        seed=seed,
        device=cfg.device,
    )


def run_one(cfg: DemoConfig, artifacts: Any, out: Path, trained: dict[int, Any]) -> Path:
    """Reward model, PPO, evaluation and report for one configuration."""
    from rlhf_gym.evaluation.report import write_report

    print(f"[demo] {out.name}: reward model", flush=True)
    reward = build_reward(cfg, artifacts, trained)
    print(f"[demo] {out.name}: PPO ({cfg.iterations} iterations)", flush=True)
    before = evaluate_held_out(
        cfg, artifacts, artifacts.load_sft_model(), reward, seed=cfg.seed + 100
    )
    agent, history = run_ppo(cfg, artifacts, reward)
    agent.save(out / "agent")
    after = evaluate_held_out(cfg, artifacts, agent.policy.model, reward, seed=cfg.seed + 100)
    rm = trained[cfg.seed][1]
    return write_report(
        out,
        history=history,
        before=before,
        after=after,
        rm_accuracy=rm["rm_accuracy"],
        bayes_accuracy=rm["bayes_accuracy"],
        calibration=rm["calibration"],
        config={
            **dataclasses.asdict(cfg),
            **{f"rm_{k}": v for k, v in rm.items() if k != "calibration"},
        },
        title=f"RLHF on the toy world: {out.name}",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; prints where the report is."""
    cfg = dataclass_from_args(DemoConfig, args)
    if cfg.quick:
        cfg = dataclasses.replace(cfg, **QUICK)
    if cfg.seeds > 1 and not cfg.compare:
        raise ValueError(
            f"--seeds {cfg.seeds} is for --compare; for seeds of one run, run demo once per "
            "--seed and fold them with `rlhf-gym report RUN [RUN ...]`."
        )
    if cfg.jobs > 1 and not cfg.compare:
        raise ValueError(f"--jobs {cfg.jobs} is for --compare, which runs seeds in parallel.")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print("[demo] toy world", flush=True)
    artifacts = build_world(cfg)
    if cfg.compare:
        from rlhf_gym.scripts.demo_compare import run_comparison

        report = run_comparison(cfg, artifacts, out, run_one)
    else:
        report = run_one(cfg, artifacts, out, {})
    seconds = time.perf_counter() - start
    (out / "timing.json").write_text(json.dumps({"seconds": round(seconds, 1)}))
    print(f"[demo] done in {seconds:.0f} s; report: {report}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/demo.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.demo", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Train a Bradley-Terry reward model (stage 1 of RLHF), by default on the toy world.

With no data arguments it builds (or loads from cache) the toy world, trains on its labeled
preference pairs starting from its SFT policy, normalises the scores on fresh SFT samples and
reports held-out accuracy against the labeler's Bayes ceiling, Spearman correlations with the
gold utility and with completion length, and the normalisation check. With ``--preferences`` and
``--base-model`` it trains on your own data instead (normalised on samples from the base model).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlhf_gym.evaluation.calibration import reward_model_calibration
from rlhf_gym.lm.loading import load_causal_lm, load_tokenizer
from rlhf_gym.reward_models.normalise import normalise_on_policy
from rlhf_gym.reward_models.pipeline import train_reward_model
from rlhf_gym.reward_models.trainer import RewardTrainingConfig
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args


@dataclass
class TrainRewardModelConfig(RewardTrainingConfig):
    """Command-line settings of ``rlhf-gym train-rm`` (optimisation fields are inherited)."""

    output_dir: str = field(
        default="runs/reward_model", metadata={"help": "folder the model (and logs) go to"}
    )
    preferences: str = field(
        default="",
        metadata={"help": "JSONL/dataset of prompt/chosen/rejected; empty: the toy world's pairs",
                  "path": True},
    )
    base_model: str = field(
        default="", metadata={"help": "causal LM to start from; empty: toy SFT", "path": True}
    )
    toy_dir: str = field(
        default="", metadata={"help": "toy-world cache folder; empty: its default"}
    )
    world_seed: int = field(default=0, metadata={"help": "seed of the toy world"})
    num_pairs: int = field(
        default=6000, metadata={"help": "toy-world preference pairs to label", "min": 2}
    )
    eval_fraction: float = field(
        default=0.1, metadata={"help": "share of pairs held out", "min": 0.0, "max": 1.0}
    )
    max_length: int = field(
        default=128, metadata={"help": "longest prompt+completion in tokens", "min": 2}
    )
    truncation: Literal["error", "left"] = field(
        default="error",
        metadata={"help": "over-long pairs: error, or drop prompt tokens from the left"},
    )
    skip_invalid: bool = field(
        default=False, metadata={"help": "skip and count bad rows, not raise"}
    )
    norm_samples: int = field(
        default=16384, metadata={"help": "SFT samples to fit normalisation on", "min": 2}
    )
    check_samples: int = field(
        default=4096, metadata={"help": "fresh SFT samples for the checks", "min": 2}
    )
    max_new_tokens: int = field(
        default=48, metadata={"help": "longest sampled SFT completion", "min": 1}
    )


CONFIG = TrainRewardModelConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field."""
    add_dataclass_arguments(parser, TrainRewardModelConfig)


def _data_sources(cfg: TrainRewardModelConfig) -> dict[str, Any]:
    """Base model, tokenizer, preferences, prompts for sampling, and the toy extras (or None)."""
    if cfg.preferences and cfg.base_model:
        return {
            "base": cfg.base_model,
            "tokenizer": load_tokenizer(cfg.base_model),
            "preferences": cfg.preferences,
            "prompts": None,
            "gold": None,
            "labeler": None,
        }
    from rlhf_gym.toy import toy_defaults

    toy = toy_defaults(
        cfg.toy_dir, world_seed=cfg.world_seed, progress=True, num_pairs=cfg.num_pairs
    )
    return {
        "base": cfg.base_model or toy.policy,
        "tokenizer": load_tokenizer(toy.tokenizer),
        "preferences": cfg.preferences or toy.preferences,
        "prompts": toy.train_prompts + toy.heldout_prompts,
        "gold": toy.gold,
        "labeler": toy.labeler,
    }


def _report(name: str, value: float) -> None:
    print(f"  {name:<38} {value:8.4f}")


def run(args: argparse.Namespace) -> int:
    """Train, normalise, report and save; returns the exit status."""
    cfg = dataclass_from_args(TrainRewardModelConfig, args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    src = _data_sources(cfg)
    start = time.perf_counter()
    rm, metrics, held_out = train_reward_model(
        src["base"],
        src["preferences"],
        tokenizer=src["tokenizer"],
        config=cfg,
        eval_fraction=cfg.eval_fraction,
        max_length=cfg.max_length,
        truncation=cfg.truncation,
        skip_invalid=cfg.skip_invalid,
        output_dir=os.path.join(cfg.output_dir, "logs"),
    )
    train_seconds = time.perf_counter() - start
    print(
        f"\nreward model trained in {train_seconds:.1f} s on {metrics['train_pairs']} pairs "
        f"({metrics['skipped_rows']} rows skipped, {metrics['truncated_pairs']} truncated)"
    )
    _report("held-out accuracy", metrics["eval_accuracy"])
    calibration = reward_model_calibration(rm, held_out)
    _report("calibration error (ECE, held-out pairs)", calibration["ece"])
    if src["labeler"] is not None:
        triples = [(p.prompt, p.chosen, p.rejected) for p in held_out]
        _report("labeler Bayes ceiling (same pairs)", src["labeler"].bayes_accuracy(triples))
    pool = src["prompts"] or sorted({p.prompt for p in held_out})
    check = normalise_on_policy(
        rm, load_causal_lm(src["base"]), pool, fit_samples=cfg.norm_samples,
        check_samples=cfg.check_samples, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
        gold=src["gold"], progress=True,
    )
    print(
        f"normalisation: gain {check['gain']:.4f}, bias {check['bias']:.4f}; "
        f"on {cfg.check_samples} fresh SFT samples:"
    )
    _report("mean (target 0 +- 0.05)", check["mean"])
    _report("std (target 1 +- 0.05)", check["std"])
    _report("Spearman(RM, length in words)", check["spearman_length"])
    if src["gold"] is not None:
        _report("Spearman(RM, gold utility)", check["spearman_gold"])
    rm.save_pretrained(cfg.output_dir)
    (Path(cfg.output_dir) / "calibration.json").write_text(json.dumps(calibration, indent=2))
    print(f"saved to {cfg.output_dir} (load with rlhf_gym.reward_models.load_reward_model)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_reward_model.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_reward_model", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Train a Bradley-Terry reward model (stage 1 of RLHF), by default on the toy world.

With no data arguments it builds (or loads from cache) the toy world, trains on its labeled
preference pairs starting from its SFT policy, normalises the scores on fresh SFT samples and
reports held-out accuracy against the labeler's Bayes ceiling, Spearman correlations with the
gold utility and with completion length, and the normalisation check. With ``--preferences`` and
``--base-model`` (both are needed: naming one does not take the other from the toy world) it
trains on your own data instead, normalised on samples from the base model (docs/own_models.md).
The output folder holds the weights, the tokenizer, the normalisation and ``train_rm.json``,
which says what the model was trained on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlhf_gym import distributed
from rlhf_gym.evaluation.calibration import reward_model_calibration
from rlhf_gym.lm.loading import load_causal_lm, load_tokenizer
from rlhf_gym.reward_models.data import load_preferences
from rlhf_gym.reward_models.normalise import normalise_on_policy
from rlhf_gym.reward_models.pipeline import train_reward_model
from rlhf_gym.reward_models.trainer import RewardTrainingConfig
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from rlhf_gym.training.sources import RM_RECORD, TOY


@dataclass
class TrainRewardModelConfig(RewardTrainingConfig):
    """Command-line settings of ``rlhf-gym train-rm`` (optimisation fields are inherited)."""

    output_dir: str = field(
        default="runs/reward_model", metadata={"help": "folder the model (and logs) go to"}
    )
    preferences: str = field(
        default="",
        metadata={
            "help": "preference pairs: JSONL/JSON/CSV/parquet, a save_to_disk folder or a "
            "hub dataset, in any format of docs/data_formats.md; empty: the toy "
            "world's pairs (with --base-model empty too)",
            "path": True,
        },
    )
    split: str = field(default="train", metadata={"help": "split of --preferences"})
    base_model: str = field(
        default="",
        metadata={
            "help": "causal LM to start from (its folder's tokenizer too); empty: the toy "
            "SFT model (with --preferences empty too); 'toy': the toy SFT model, "
            "explicitly",
            "path": True,
        },
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


def check_pieces(cfg: TrainRewardModelConfig) -> None:
    """Raise naming the missing flag when only one of the base model and the data is named.

    Raises:
        ValueError: for ``--base-model`` without ``--preferences`` or the other way round.
    """
    if cfg.base_model and cfg.base_model != TOY and not cfg.preferences:
        raise ValueError(
            f"--base-model {cfg.base_model} names your own model, so train-rm takes nothing from "
            "the toy world: name its preference pairs with --preferences SOURCE "
            "(docs/data_formats.md)."
        )
    if cfg.preferences and not cfg.base_model:
        raise ValueError(
            f"--preferences {cfg.preferences} names your own data, so train-rm takes nothing from "
            "the toy world: name the model to start from with --base-model MODEL (your SFT "
            "policy), or --base-model toy for the toy world's SFT model."
        )


def _data_sources(cfg: TrainRewardModelConfig) -> dict[str, Any]:
    """Base model, tokenizer, preferences, prompts for sampling, and the toy extras (or None)."""
    check_pieces(cfg)
    if cfg.base_model and cfg.base_model != TOY:
        return {"base": cfg.base_model, "tokenizer": load_tokenizer(cfg.base_model),
                "preferences": cfg.preferences, "prompts": None, "gold": None, "labeler": None,
                "world": "own"}  # fmt: skip
    from rlhf_gym.toy import toy_defaults

    toy = toy_defaults(
        cfg.toy_dir, world_seed=cfg.world_seed, progress=True, num_pairs=cfg.num_pairs
    )
    return {"base": toy.policy, "tokenizer": load_tokenizer(toy.tokenizer),
            "preferences": cfg.preferences or toy.preferences,
            "prompts": toy.train_prompts + toy.heldout_prompts, "gold": toy.gold,
            "labeler": toy.labeler, "world": TOY if not cfg.preferences else "own"}  # fmt: skip


def _report(name: str, value: float) -> None:
    print(f"  {name:<38} {value:8.4f}")


def _train(cfg: TrainRewardModelConfig, src: dict[str, Any]) -> Any:
    """Load split ``--split`` of the pairs and train on them; print what was trained."""
    data = load_preferences(src["preferences"], split=cfg.split, tokenizer=src["tokenizer"],
                            skip_invalid=cfg.skip_invalid)  # fmt: skip
    start = time.perf_counter()
    trained = train_reward_model(
        src["base"],
        [asdict(pair) for pair in data.pairs],  # validated (and chat-rendered) rows
        tokenizer=src["tokenizer"],
        config=cfg,
        eval_fraction=cfg.eval_fraction,
        max_length=cfg.max_length,
        truncation=cfg.truncation,
        skip_invalid=cfg.skip_invalid,
        output_dir=os.path.join(cfg.output_dir, "logs"),
    )
    metrics = trained.metrics
    if not distributed.is_main_process():
        return trained
    skipped = len(data.skipped) + metrics["skipped_rows"]
    print(
        f"\nreward model trained in {time.perf_counter() - start:.1f} s on "
        f"{metrics['train_pairs']} pairs ({skipped} rows skipped, "
        f"{metrics['truncated_pairs']} truncated)"
        + (f", data-parallel over {n} processes" if (n := metrics["processes"]) > 1 else "")
    )
    _report("held-out accuracy", metrics["eval_accuracy"])
    return trained


def _normalise(cfg: TrainRewardModelConfig, src: dict[str, Any], rm: Any, held_out: Any) -> None:
    """Fit the scale on base-model samples (frozen: ``--dtype``) and print the check."""
    pool = src["prompts"] or sorted({p.prompt for p in held_out})
    base = load_causal_lm(src["base"], device=rm.device, dtype=cfg.dtype)
    check = normalise_on_policy(
        rm, base, pool, policy_tokenizer=src["tokenizer"], fit_samples=cfg.norm_samples,
        check_samples=cfg.check_samples, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
        gold=src["gold"], progress=True,
    )  # fmt: skip
    print(
        f"normalisation: gain {check['gain']:.4f}, bias {check['bias']:.4f}; "
        f"on {cfg.check_samples} fresh SFT samples:"
    )
    _report("mean (target 0 +- 0.05)", check["mean"])
    _report("std (target 1 +- 0.05)", check["std"])
    _report("Spearman(RM, length in words)", check["spearman_length"])
    if src["gold"] is not None:
        _report("Spearman(RM, gold utility)", check["spearman_gold"])


def run(args: argparse.Namespace) -> int:
    """Train, normalise, report and save; returns the exit status.

    Under a launcher every rank trains (data-parallel, the same global batch as one process);
    rank 0 alone samples for the normalisation, reports and writes the model folder.
    """
    cfg = dataclass_from_args(TrainRewardModelConfig, args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    distributed.init_from_env()  # a no-op unless launched by torchrun / accelerate launch
    with distributed.main_process_first():  # the toy build and downloads happen once
        src = _data_sources(cfg)
    rm, _, held_out = _train(cfg, src)  # the Trainer splits each batch over the ranks
    if not distributed.is_main_process():
        return 0  # the normalisation samples, the report and the files are rank 0's
    calibration = reward_model_calibration(rm, held_out)
    _report("calibration error (ECE, held-out pairs)", calibration["ece"])
    if src["labeler"] is not None:
        triples = [(p.prompt, p.chosen, p.rejected) for p in held_out]
        _report("labeler Bayes ceiling (same pairs)", src["labeler"].bayes_accuracy(triples))
    _normalise(cfg, src, rm, held_out)
    rm.save_pretrained(cfg.output_dir)
    out = Path(cfg.output_dir)
    (out / "calibration.json").write_text(json.dumps(calibration, indent=2))
    record = {"world": src["world"], **asdict(cfg)}
    (out / RM_RECORD).write_text(json.dumps(record, indent=2))
    print(f"saved to {cfg.output_dir} (load with rlhf_gym.reward_models.load_reward_model)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_reward_model.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_reward_model", argv)


if __name__ == "__main__":
    sys.exit(main())

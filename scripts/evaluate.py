"""Evaluate a policy on held-out prompts: reward, gold utility, KL to the reference, diversity.

With no arguments it evaluates the toy world's SFT policy on the toy world's held-out prompts,
scored by the gold utility (built or loaded from the toy cache). ``--policy`` takes a model
folder or a ``train-ppo`` output folder (its ``final/`` policy, else its ``checkpoint/`` one);
for a run, the KL is measured against the policy it started from, and a run on the toy world
keeps the toy world's prompts and gold utility. A policy of your own needs ``--prompts`` (any
format of docs/data_formats.md) and ``--reward-model`` to score with; the tokenizer comes from
the policy's folder. Prints a table and, with ``--output-dir``, writes every sample and
aggregate to ``eval.json`` there.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlhf_gym.envs.prompts import read_prompts
from rlhf_gym.lm.loading import load_causal_lm, load_tokenizer, torch_dtype
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args

TOY_PROMPTS = "toy-heldout"


@dataclass
class EvaluateConfig:
    """Command-line settings of ``rlhf-gym evaluate``."""

    policy: str = field(
        default="",
        metadata={
            "help": "policy folder or name, or a train-ppo output folder; empty: toy SFT",
            "path": True,
        },
    )
    reference: str = field(
        default="",
        metadata={
            "help": "model KL is measured against; empty: a run's starting policy, the "
            "toy SFT on the toy world, else no KL; 'none': no KL",
            "path": True,
        },
    )
    tokenizer: str = field(
        default="",
        metadata={
            "help": "tokenizer folder or name; empty: the policy folder's, or toy",
            "path": True,
        },
    )
    reward: Literal["gold", "none"] = field(
        default="gold",
        metadata={
            "help": "score with the toy gold utility (toy prompts only), or nothing (with "
            "--reward-model)"
        },
    )
    reward_model: str = field(
        default="",
        metadata={
            "help": "reward model folder or hub id to score with (overrides --reward)",
            "path": True,
        },
    )
    prompts: str = field(
        default="",
        metadata={
            "help": "held-out prompts: a text file (one per line), JSONL/parquet, a "
            "save_to_disk folder or a hub dataset; 'toy-heldout': the toy "
            "world's; empty: the toy world's on the toy world",
            "path": True,
        },
    )
    prompts_split: str = field(default="train", metadata={"help": "split of --prompts"})
    prompt_column: str = field(
        default="prompt", metadata={"help": "column of --prompts holding the prompt"}
    )
    num_prompts: int = field(default=0, metadata={"help": "first N prompts; 0: all", "min": 0})
    eval_samples: int = field(default=4, metadata={"help": "completions per prompt", "min": 1})
    max_new_tokens: int = field(
        default=48, metadata={"help": "longest completion in tokens", "min": 1}
    )
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature", "min": 1e-6})
    batch_size: int = field(default=64, metadata={"help": "sequences sampled together", "min": 1})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, ..."})
    dtype: Literal["float32", "bfloat16", "float16"] = field(
        default="float32", metadata={"help": "precision of the policy, reference and reward model"}
    )
    toy_dir: str = field(default="", metadata={"help": "toy-world cache folder; empty: default"})
    world_seed: int = field(default=0, metadata={"help": "seed of the toy world"})
    output_dir: str = field(
        default="", metadata={"help": "write every sample and aggregate to OUTPUT_DIR/eval.json"}
    )


CONFIG = EvaluateConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field."""
    add_dataclass_arguments(parser, EvaluateConfig)


def _starting_policy(run: Any) -> str | None:
    """The policy a train-ppo run started from (its reference), "" for the toy SFT, or None."""
    if run is None:
        return None
    from rlhf_gym.training.sources import uses_toy_world

    return "" if uses_toy_world(run) else run.reference or run.policy


def _check_pieces(cfg: EvaluateConfig, toy_world: bool) -> None:
    """A policy of your own takes neither prompts nor the gold utility from the toy world.

    Raises:
        ValueError: naming ``--prompts`` or ``--reward-model``.
    """
    if not cfg.prompts and not toy_world:
        raise ValueError(
            f"--policy {cfg.policy} is your own model, so evaluate takes nothing from the toy "
            "world: name held-out prompts with --prompts SOURCE (or --prompts toy-heldout)."
        )
    toy_prompts = cfg.prompts == TOY_PROMPTS or (not cfg.prompts and toy_world)
    if not cfg.reward_model and cfg.reward == "gold" and not toy_prompts:
        raise ValueError(
            "the gold utility scores the toy world's text only: name the reward model to score "
            f"{cfg.prompts} with, --reward-model FOLDER."
        )
    if not cfg.reward_model and cfg.reward == "none":
        raise ValueError("--reward none needs --reward-model PATH to score with.")


def resolve(cfg: EvaluateConfig) -> dict[str, Any]:
    """The policy, reference, tokenizer, prompts, reward and gold sources the config names.

    The toy world is imported (and built or loaded from its cache) only when it is in use.
    """
    from rlhf_gym.lm.loading import has_tokenizer
    from rlhf_gym.training.outputs import find_policy, run_config
    from rlhf_gym.training.sources import TOY

    own = cfg.policy not in ("", TOY)
    start = _starting_policy(run_config(cfg.policy)) if own else None
    toy_world = not own or start == ""
    _check_pieces(cfg, toy_world)
    toy_prompts = cfg.prompts == TOY_PROMPTS or not cfg.prompts
    policy = find_policy(cfg.policy) if own else ""
    toy: dict[str, Any] = {}
    if toy_world or toy_prompts or (cfg.reward == "gold" and not cfg.reward_model):
        from rlhf_gym.toy import toy_defaults

        found = toy_defaults(cfg.toy_dir, world_seed=cfg.world_seed, progress=True)
        toy = {"sft": found.policy, "tokenizer": found.tokenizer,
               "prompts": found.heldout_prompts, "gold": found.gold}  # fmt: skip
    policy = policy or toy["sft"]
    reference = cfg.reference or start or (toy["sft"] if toy_world else None)
    named = cfg.tokenizer or (policy if has_tokenizer(policy) else toy.get("tokenizer"))
    if named is None:
        raise ValueError(f"{policy} holds no tokenizer; name the policy's with --tokenizer.")
    tokenizer = load_tokenizer(named)
    prompts = toy["prompts"] if toy_prompts else read_prompts(
        cfg.prompts, split=cfg.prompts_split, column=cfg.prompt_column, tokenizer=tokenizer
    )  # fmt: skip
    if cfg.num_prompts > 0:
        prompts = prompts[: cfg.num_prompts]
    gold = toy["gold"] if toy_prompts else None
    if cfg.reward_model:
        from rlhf_gym.reward_models import load_reward_model

        reward = load_reward_model(cfg.reward_model, policy_tokenizer=tokenizer)
        reward.model.to(torch_dtype(cfg.dtype))
    else:
        reward, gold = toy["gold"], None  # gold is the reward: no second column
    return {
        "policy": policy,
        "reference": None if reference == "none" else reference,
        "tokenizer": tokenizer,
        "prompts": prompts,
        "reward": reward,
        "gold": gold,
    }


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, and write JSON when asked; returns the exit status."""
    from rlhf_gym.evaluation.held_out import evaluate_policy

    cfg = dataclass_from_args(EvaluateConfig, args)
    src = resolve(cfg)
    reference = src["reference"]
    if reference is not None:
        reference = load_causal_lm(reference, dtype=cfg.dtype)
    result = evaluate_policy(
        load_causal_lm(src["policy"], dtype=cfg.dtype),
        src["tokenizer"],
        src["prompts"],
        src["reward"],
        gold=src["gold"],
        reference=reference,
        num_samples_per_prompt=cfg.eval_samples,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=cfg.device,
    )
    print(
        f"policy {src['policy']} on {len(src['prompts'])} prompts "
        f"x {cfg.eval_samples} samples (reference: {src['reference']})"
    )
    print(result.table())
    if cfg.output_dir:
        out = Path(cfg.output_dir) / "eval.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        data = result.to_dict()
        data["settings"].update(policy=str(src["policy"]), reference=str(src["reference"]))
        out.write_text(json.dumps(data, indent=2))
        print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/evaluate.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate a policy on held-out prompts: reward, gold utility, KL to the reference, diversity.

With no arguments it evaluates the toy world's SFT policy on the toy world's held-out prompts,
scored by the gold utility (built or loaded from the toy cache). Point ``--policy`` at a trained
policy to see what RL changed, ``--reward-model`` at a trained reward model to score with the
proxy (the gold utility is then reported beside it on toy prompts), and ``--prompts`` at a file
(one prompt per line, or JSONL with a "prompt" field) to leave the toy world. Prints a table
and, with ``--output-dir``, writes every sample and aggregate to ``eval.json`` there.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rlhf_gym.envs.prompts import read_prompts
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args

TOY_PROMPTS = "toy-heldout"


@dataclass
class EvaluateConfig:
    """Command-line settings of ``rlhf-gym evaluate``."""

    policy: str = field(
        default="", metadata={"help": "policy folder or name; empty: toy SFT", "path": True}
    )
    reference: str = field(
        default="",
        metadata={"help": "model KL is measured against; empty: toy SFT when the toy world is "
                          "in use, else no KL; 'none': no KL", "path": True},
    )
    tokenizer: str = field(
        default="",
        metadata={"help": "tokenizer folder or name; empty: the policy's, or toy", "path": True},
    )
    reward: Literal["gold", "none"] = field(
        default="gold",
        metadata={"help": "score with the toy gold utility, or nothing (with --reward-model)"},
    )
    reward_model: str = field(
        default="",
        metadata={"help": "saved reward model to score with (overrides --reward)", "path": True},
    )
    prompts: str = field(
        default=TOY_PROMPTS,
        metadata={"help": "'toy-heldout', or a file: one prompt per line, or JSONL 'prompt'",
                  "path": True},
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
    toy_dir: str = field(default="", metadata={"help": "toy-world cache folder; empty: default"})
    world_seed: int = field(default=0, metadata={"help": "seed of the toy world"})
    output_dir: str = field(
        default="", metadata={"help": "write every sample and aggregate to OUTPUT_DIR/eval.json"}
    )


CONFIG = EvaluateConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field."""
    add_dataclass_arguments(parser, EvaluateConfig)


def _uses_toy(cfg: EvaluateConfig) -> bool:
    """Whether any setting is left to its toy-world default."""
    return (not cfg.policy or cfg.prompts == TOY_PROMPTS
            or (cfg.reward == "gold" and not cfg.reward_model))


def resolve(cfg: EvaluateConfig) -> dict[str, Any]:
    """The policy, reference, tokenizer, prompts, reward and gold sources the config names.

    The toy world is imported (and built or loaded from its cache) only when a setting is left
    to its toy default.
    """
    toy: dict[str, Any] = {}
    if _uses_toy(cfg):
        from rlhf_gym.toy import toy_defaults

        found = toy_defaults(cfg.toy_dir, world_seed=cfg.world_seed, progress=True)
        toy = {"sft": found.policy, "tokenizer": found.tokenizer,
               "prompts": found.heldout_prompts, "gold": found.gold}
    policy = cfg.policy or toy["sft"]
    reference = None if cfg.reference == "none" else cfg.reference or toy.get("sft")
    prompts = toy["prompts"] if cfg.prompts == TOY_PROMPTS else read_prompts(cfg.prompts)
    if cfg.num_prompts > 0:
        prompts = prompts[: cfg.num_prompts]
    gold = toy["gold"] if cfg.prompts == TOY_PROMPTS else None
    if cfg.reward_model:
        from rlhf_gym.reward_models import load_reward_model

        reward = load_reward_model(cfg.reward_model)
    elif cfg.reward == "gold":
        reward, gold = toy["gold"], None  # gold is the reward: no second column
    else:
        raise ValueError("--reward none needs --reward-model PATH to score with.")
    return {"policy": policy, "reference": reference,
            "tokenizer": cfg.tokenizer or toy.get("tokenizer") or policy,
            "prompts": prompts, "reward": reward, "gold": gold}


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, and write JSON when asked; returns the exit status."""
    from rlhf_gym.evaluation.held_out import evaluate_policy

    cfg = dataclass_from_args(EvaluateConfig, args)
    src = resolve(cfg)
    result = evaluate_policy(
        src["policy"], src["tokenizer"], src["prompts"], src["reward"],
        gold=src["gold"], reference=src["reference"],
        num_samples_per_prompt=cfg.eval_samples, max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature, batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device,
    )
    print(f"policy {src['policy']} on {len(src['prompts'])} prompts "
          f"x {cfg.eval_samples} samples (reference: {src['reference']})")
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

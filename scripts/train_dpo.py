"""Train a policy with DPO on preference pairs, by default the toy world's, and evaluate it.

With nothing real named, the toy world's SFT policy is trained on the toy world's labelled pairs
(the pairs ``train-rm`` trains on), with the SFT itself as DPO's frozen reference. Name your own
policy (``--policy``) and you must name your pairs (``--preferences``), and the other way round:
nothing is taken from the toy world then. The trained policy goes to ``OUTPUT_DIR/final/policy``
with its tokenizer and a generation config that stops where the env's episodes stop (it loads
with plain ``from_pretrained``). It is then evaluated on held-out prompts as PPO's policies are
(:func:`~rlhf_gym.evaluation.held_out.evaluate_policy`): on the toy world the gold utility, the
KL to the SFT, length and diversity, next to the SFT's own figures; a ``--reward-model`` adds
its proxy score. Your own policy is evaluated on ``--eval-prompts`` with ``--reward-model``
(``--eval-samples 0`` skips the evaluation). Writes ``eval.json`` (and ``eval_start.json``,
the starting policy's) and ``train_dpo.json`` (settings and training metrics).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.agents.dpo.config import DPOConfig
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args

FINAL_POLICY = Path("final") / "policy"


@dataclass
class TrainDPOConfig(DPOConfig):
    """Command-line settings of ``rlhf-gym train-dpo`` (optimisation fields are inherited)."""

    output_dir: str = field(default="runs/dpo", metadata={"help": "folder the run goes to"})
    policy: str = field(
        default="",
        metadata={"help": "SFT policy to train (its folder's tokenizer too), also the reference; "
                  "empty: the toy SFT (with --preferences empty too)", "path": True},
    )  # fmt: skip
    preferences: str = field(
        default="",
        metadata={"help": "preference pairs in any format of docs/data_formats.md; empty: the "
                  "toy world's (with --policy empty too)", "path": True},
    )  # fmt: skip
    split: str = field(default="train", metadata={"help": "split of --preferences"})
    reward_model: str = field(
        default="",
        metadata={"help": "reward model folder to score held-out samples with (the proxy)",
                  "path": True},
    )  # fmt: skip
    eval_prompts: str = field(
        default="",
        metadata={"help": "held-out prompts for your own policy (docs/data_formats.md); the "
                  "toy world uses its own", "path": True},
    )  # fmt: skip
    eval_samples: int = field(
        default=64, metadata={"help": "held-out samples per prompt; 0: no evaluation", "min": 0}
    )
    max_new_tokens: int = field(
        default=48, metadata={"help": "longest sampled completion", "min": 1}
    )
    toy_dir: str = field(default="", metadata={"help": "toy-world cache folder; empty: default"})
    world_seed: int = field(default=0, metadata={"help": "seed of the toy world"})


CONFIG = TrainDPOConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field."""
    add_dataclass_arguments(parser, TrainDPOConfig)


def check_pieces(cfg: TrainDPOConfig) -> None:
    """Raise naming the missing flag when only one real piece is named.

    Raises:
        ValueError: for ``--policy`` without ``--preferences`` (or the other way round), and
            for your own policy's evaluation without ``--eval-prompts`` or ``--reward-model``.
    """
    if cfg.policy and not cfg.preferences:
        raise ValueError(
            f"--policy {cfg.policy} names your own model, so train-dpo takes nothing from the toy "
            "world: name its preference pairs with --preferences SOURCE (docs/data_formats.md)."
        )
    if cfg.preferences and not cfg.policy:
        raise ValueError(
            f"--preferences {cfg.preferences} names your own data, so train-dpo takes nothing "
            "from the toy world: name the SFT policy to train with --policy MODEL."
        )
    if cfg.policy and cfg.eval_samples:
        missing = [f for f, v in (("--eval-prompts", cfg.eval_prompts),
                                  ("--reward-model", cfg.reward_model)) if not v]  # fmt: skip
        if missing:
            raise ValueError(
                f"evaluating your own policy needs {' and '.join(missing)} (held-out prompts "
                "and a reward model to score them); or pass --eval-samples 0 to skip it."
            )


def _sources(cfg: TrainDPOConfig) -> dict[str, Any]:
    """Policy, tokenizer, pairs and the evaluation's prompts and gold (None off the toy world)."""
    from rlhf_gym.envs.prompts import read_prompts
    from rlhf_gym.lm.loading import load_tokenizer

    check_pieces(cfg)
    if cfg.policy:
        tokenizer = load_tokenizer(cfg.policy)
        prompts = read_prompts(cfg.eval_prompts, tokenizer=tokenizer) if cfg.eval_prompts else []
        return {"policy": cfg.policy, "tokenizer": tokenizer, "preferences": cfg.preferences,
                "prompts": prompts, "gold": None}  # fmt: skip
    from rlhf_gym.toy import toy_defaults

    toy = toy_defaults(cfg.toy_dir, world_seed=cfg.world_seed, progress=True)
    return {
        "policy": toy.policy,
        "tokenizer": load_tokenizer(toy.tokenizer),
        "preferences": toy.preferences,
        "prompts": toy.heldout_prompts,
        "gold": toy.gold,
    }


def save_policy(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save weights, tokenizer and a generation config that stops on the env's stop ids."""
    from rlhf_gym.lm.loading import generation_config

    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    generation_config(model, tokenizer).save_pretrained(folder)
    return folder


def _train(cfg: TrainDPOConfig, src: dict[str, Any]) -> Any:
    """Load split ``--split`` of the pairs, train, print the held-out implicit-reward figures."""
    from rlhf_gym.agents.dpo import train_dpo
    from rlhf_gym.reward_models.data import load_preferences

    data = load_preferences(src["preferences"], split=cfg.split, tokenizer=src["tokenizer"])
    start = time.perf_counter()
    trained = train_dpo(src["policy"], data, tokenizer=src["tokenizer"], config=cfg,
                        output_dir=str(Path(cfg.output_dir) / "logs"))  # fmt: skip
    seconds = time.perf_counter() - start
    m = trained.metrics
    print(
        f"\nDPO trained in {seconds:.1f} s on {m['train_pairs']} pairs "
        f"({m['eval_pairs']} held out): held-out implicit-reward accuracy "
        f"{m['eval_dpo/reward_accuracy']:.3f}, margin {m['eval_dpo/reward_margin']:.3f}"
    )
    return trained, seconds


def _evaluate(cfg: TrainDPOConfig, src: dict[str, Any], policy: Any, reward: Any) -> Any:
    """:func:`evaluate_policy` of ``policy`` against the starting policy as reference."""
    from rlhf_gym.evaluation.held_out import evaluate_policy

    return evaluate_policy(
        policy, src["tokenizer"], src["prompts"], reward, gold=src["gold"],
        reference=src["policy"], num_samples_per_prompt=cfg.eval_samples,
        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
    )  # fmt: skip


def _write(out: Path, name: str, result: Any, policy: str) -> None:
    data = result.to_dict()
    data["settings"]["policy"] = policy
    (out / name).write_text(json.dumps(data, indent=2))


def evaluate_both(cfg: TrainDPOConfig, src: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Evaluate the trained policy and its start alike; print both; write their JSON files."""
    reward = src["gold"]
    if cfg.reward_model:
        from rlhf_gym.reward_models import load_reward_model

        reward = load_reward_model(cfg.reward_model, policy_tokenizer=src["tokenizer"])
    after = _evaluate(cfg, src, str(folder), reward)
    before = _evaluate(cfg, src, src["policy"], reward)
    out = Path(cfg.output_dir)
    _write(out, "eval.json", after, str(folder))
    _write(out, "eval_start.json", before, str(src["policy"]))
    print(f"\nheld-out: {len(src['prompts'])} prompts x {cfg.eval_samples} samples, "
          f"KL against the starting policy")  # fmt: skip
    print(f"{'metric':<16} {'start':>10} {'DPO':>10}")
    rows = zip(before.aggregates().items(), after.aggregates().values(), strict=True)
    for (key, start), end in rows:
        shown = ["n/a" if v is None else f"{v:.4f}" for v in (start, end)]
        print(f"{key:<16} {shown[0]:>10} {shown[1]:>10}")
    return _gain(before, after)


def _gain(before: Any, after: Any) -> dict[str, Any]:
    """The gold gain in units of the starting policy's gold std (toy world), and the KL."""
    import numpy as np

    if before.gold is None:
        return {"kl_mean": after.kl_mean}
    gain = (after.gold_mean - before.gold_mean) / float(np.std(before.gold))
    print(f"gold gain: {gain:+.3f} start-policy std (KL {after.kl_mean:.2f} nats)")
    return {"gold_gain_std": gain, "kl_mean": after.kl_mean}


def run(args: argparse.Namespace) -> int:
    """Train, save, evaluate; returns the exit status."""
    cfg = dataclass_from_args(TrainDPOConfig, args)
    src = _sources(cfg)  # a missing piece fails here, before any training
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    trained, seconds = _train(cfg, src)
    folder = save_policy(trained.model, src["tokenizer"], out / FINAL_POLICY)
    print(f"saved the policy to {folder} (loads with AutoModelForCausalLM.from_pretrained)")
    figures = evaluate_both(cfg, src, folder) if cfg.eval_samples else {}
    record = {
        "world": "own" if cfg.policy else "toy",
        "config": asdict(cfg),
        "metrics": trained.metrics,
        "train_seconds": seconds,
        "held_out": figures,
    }
    (out / "train_dpo.json").write_text(json.dumps(record, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_dpo.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_dpo", argv)


if __name__ == "__main__":
    sys.exit(main())

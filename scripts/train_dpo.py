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
(``--eval-samples 0`` skips the evaluation; ``--reward gold`` scores a toy-language policy of
your own with the toy world's gold utility too, as in ``train-ppo``). Writes ``eval.json`` (and
``eval_start.json``, the starting policy's) and ``train_dpo.json`` (settings and training
metrics). ``--curve-points N`` also evaluates the policy before training and at N evenly spaced
optimiser steps, with ``--curve-samples`` per prompt, into ``curves.csv`` with train-ppo's
columns (docs/metrics.md), so DPO has a curve against KL like the RL methods.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.agents.dpo.config import DPOConfig
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from transformers import TrainerCallback

FINAL_POLICY = Path("final") / "policy"
#: Curve point i samples with seed 10 000 + i, as train-ppo's held-out evaluation of iteration i.
CURVE_SEED = 10_000


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
    reward: str = field(
        default="",
        metadata={"help": "'gold': score held-out samples with the toy world's gold utility "
                  "(toy-language text only), as train-ppo's --reward gold; --reward-model, "
                  "when given too, is the proxy and gold its own column"},
    )  # fmt: skip
    eval_samples: int = field(
        default=64, metadata={"help": "held-out samples per prompt; 0: no evaluation", "min": 0}
    )
    curve_points: int = field(
        default=0,
        metadata={"help": "held-out evaluations at this many evenly spaced optimiser steps (and "
                  "one before training), to curves.csv as train-ppo's; 0: none", "min": 0},
    )  # fmt: skip
    curve_samples: int = field(
        default=32, metadata={"help": "held-out samples per prompt at each curve point", "min": 1}
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
    if cfg.reward not in ("", "gold"):
        raise ValueError(f"--reward must be 'gold' or empty, got {cfg.reward!r}.")
    if cfg.policy and (cfg.eval_samples or cfg.curve_points):
        scored = cfg.reward_model or cfg.reward
        missing = [f for f, v in (("--eval-prompts", cfg.eval_prompts),
                                  ("--reward-model", scored)) if not v]  # fmt: skip
        if missing:
            raise ValueError(
                f"evaluating your own policy needs {' and '.join(missing)} (held-out prompts "
                "and a reward model to score them, or --reward gold for toy-language text); or "
                "pass --eval-samples 0 (and --curve-points 0) to skip it."
            )


def _sources(cfg: TrainDPOConfig) -> dict[str, Any]:
    """Policy, tokenizer, pairs and the evaluation's prompts and gold (None off the toy world)."""
    from rlhf_gym.envs.prompts import read_prompts
    from rlhf_gym.lm.loading import load_tokenizer

    check_pieces(cfg)
    if cfg.policy:
        tokenizer = load_tokenizer(cfg.policy)
        prompts = read_prompts(cfg.eval_prompts, tokenizer=tokenizer) if cfg.eval_prompts else []
        gold = _toy_gold() if cfg.reward == "gold" else None
        return {"policy": cfg.policy, "tokenizer": tokenizer, "preferences": cfg.preferences,
                "prompts": prompts, "gold": gold}  # fmt: skip
    from rlhf_gym.toy import toy_defaults

    toy = toy_defaults(cfg.toy_dir, world_seed=cfg.world_seed, progress=True)
    return {
        "policy": toy.policy,
        "tokenizer": load_tokenizer(toy.tokenizer),
        "preferences": toy.preferences,
        "prompts": toy.heldout_prompts,
        "gold": toy.gold,
    }


def _toy_gold() -> Any:
    """The toy world's gold utility (imported on use, as train-ppo's)."""
    from rlhf_gym.toy import GoldUtility

    return GoldUtility()


def _reward(cfg: TrainDPOConfig, src: dict[str, Any]) -> Any:
    """What scores held-out samples: ``--reward-model``, else the gold utility."""
    if not cfg.reward_model:
        return src["gold"]
    from rlhf_gym.reward_models import load_reward_model

    return load_reward_model(cfg.reward_model, policy_tokenizer=src["tokenizer"])


class HeldOutCurve(TrainerCallback):
    """Evaluate the policy before training and at ``points`` evenly spaced optimiser steps.

    One record per point with train-ppo's ``curves.csv`` keys (:func:`history_row`, ``step``
    being the optimiser step and ``seconds`` the training time so far, evaluations excluded),
    rewritten to ``path`` after each (rank 0 only).

    Args:
        evaluate: ``evaluate(model, i)`` -> the :class:`EvalResult` of curve point ``i``.
        points: evaluations after the start.
        path: the ``curves.csv`` to write.
    """

    def __init__(self, evaluate: Callable[[Any, int], Any], points: int, path: Path) -> None:
        self.evaluate, self.points, self.path = evaluate, points, path
        self.records: list[dict[str, Any]] = []
        self._steps: set[int] = set()
        self._train_seconds = self._clock = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Fix the steps to evaluate at; evaluate the starting policy."""
        last = max(state.max_steps, 1)
        self._steps = {max(1, round(k * last / self.points)) for k in range(1, self.points + 1)}
        self._record(state, kwargs["model"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Evaluate at the chosen steps."""
        if state.global_step in self._steps:
            self._record(state, kwargs["model"])

    def _record(self, state: Any, model: Any) -> None:
        from rlhf_gym.evaluation.callbacks import history_row
        from rlhf_gym.training.loop import write_curves

        if not state.is_world_process_zero:
            return
        if self.records:
            self._train_seconds += time.perf_counter() - self._clock
        training = model.training
        result = self.evaluate(model, len(self.records))
        model.train(training)  # the evaluation leaves the model in eval mode
        self.records.append(
            {
                "step": state.global_step,
                "epoch": float(state.epoch or 0.0),
                "seconds": round(self._train_seconds, 2),
                **history_row(result),
            }
        )
        write_curves(self.path, self.records)
        self._clock = time.perf_counter()


def held_out_curve(cfg: TrainDPOConfig, src: dict[str, Any], reward: Any) -> HeldOutCurve:
    """The ``--curve-points`` callback: :func:`evaluate_policy` against the starting policy."""
    from rlhf_gym.evaluation.held_out import evaluate_policy
    from rlhf_gym.lm.loading import load_causal_lm

    reference = load_causal_lm(src["policy"])  # loaded once, not at every point

    def evaluate(model: Any, index: int) -> Any:
        return evaluate_policy(
            model, src["tokenizer"], src["prompts"], reward, gold=src["gold"],
            reference=reference, num_samples_per_prompt=cfg.curve_samples,
            max_new_tokens=cfg.max_new_tokens, seed=CURVE_SEED + index,
        )  # fmt: skip

    return HeldOutCurve(evaluate, cfg.curve_points, Path(cfg.output_dir) / "curves.csv")


def save_policy(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save weights, tokenizer and a generation config that stops on the env's stop ids."""
    from rlhf_gym.lm.loading import generation_config

    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    generation_config(model, tokenizer).save_pretrained(folder)
    return folder


def _train(cfg: TrainDPOConfig, src: dict[str, Any], callbacks: list[Any]) -> Any:
    """Load split ``--split`` of the pairs, train, print the held-out implicit-reward figures."""
    from rlhf_gym.agents.dpo import train_dpo
    from rlhf_gym.reward_models.data import load_preferences

    data = load_preferences(src["preferences"], split=cfg.split, tokenizer=src["tokenizer"])
    start = time.perf_counter()
    trained = train_dpo(src["policy"], data, tokenizer=src["tokenizer"], config=cfg,
                        output_dir=str(Path(cfg.output_dir) / "logs"),
                        callbacks=callbacks)  # fmt: skip
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


def evaluate_both(
    cfg: TrainDPOConfig, src: dict[str, Any], folder: Path, reward: Any
) -> dict[str, Any]:
    """Evaluate the trained policy and its start alike; print both; write their JSON files."""
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
    reward = _reward(cfg, src) if cfg.eval_samples or cfg.curve_points else None
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve = [held_out_curve(cfg, src, reward)] if cfg.curve_points else []
    trained, seconds = _train(cfg, src, curve)
    folder = save_policy(trained.model, src["tokenizer"], out / FINAL_POLICY)
    print(f"saved the policy to {folder} (loads with AutoModelForCausalLM.from_pretrained)")
    figures = evaluate_both(cfg, src, folder, reward) if cfg.eval_samples else {}
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

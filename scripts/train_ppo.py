"""Train an LM policy with PPO on the token-level text env (the toy world by default).

Defaults: the toy world's SFT model is the policy and the reference; the reward is the toy gold
utility (``--reward gold``), a trained reward model (``--reward-model PATH``) or any callable
(``--reward module:function``). Every iteration appends a row to ``curves.csv`` with the gold
utility, the proxy score and the KL of samples on held-out prompts, plus the training metrics;
the final policy is saved to ``OUT_DIR/final`` (and ``OUT_DIR/checkpoint`` every K iterations).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args


@dataclass
class TrainPPOConfig:
    """Command-line configuration of ``rlhf-gym train-ppo``."""

    policy: str = field(
        default="", metadata={"help": "policy model name or path (default: toy SFT)"}
    )
    reference: str = field(default="", metadata={"help": "reference model (default: the policy)"})
    tokenizer: str = field(
        default="", metadata={"help": "tokenizer (default: toy or the policy's)"}
    )
    reward: str = field(
        default="gold", metadata={"help": "'gold' (toy utility) or module:function"}
    )
    reward_model: str = field(
        default="", metadata={"help": "trained reward model dir (over --reward)"}
    )
    prompts: str = field(default="", metadata={"help": "training prompts file, one per line (toy)"})
    eval_prompts: str = field(default="", metadata={"help": "held-out prompts file (toy held-out)"})
    eval_per_prompt: int = field(default=32, metadata={"help": "held-out samples per eval prompt"})
    out_dir: str = field(default="runs/ppo", metadata={"help": "where curves and checkpoints go"})
    toy_dir: str = field(default="", metadata={"help": "toy artifacts dir (default: its cache)"})
    world_seed: int = field(default=0, metadata={"help": "toy world seed"})
    seed: int = field(default=0, metadata={"help": "agent and env seed"})
    iterations: int = field(default=25, metadata={"help": "PPO iterations (rollout + update)"})
    num_envs: int = field(default=32, metadata={"help": "parallel episodes (rows)"})
    n_steps: int = field(
        default=0, metadata={"help": "tokens per env per rollout (0: max_new_tokens)"}
    )
    max_new_tokens: int = field(default=48, metadata={"help": "completion budget"})
    max_prompt_tokens: int = field(default=8, metadata={"help": "prompt budget"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    learning_rate: float = field(default=1e-4, metadata={"help": "Adam learning rate (eps 1e-5)"})
    n_epochs: int = field(default=4, metadata={"help": "PPO epochs per rollout"})
    batch_size: int = field(default=8, metadata={"help": "sequences per minibatch"})
    clip_range: float = field(default=0.2, metadata={"help": "PPO ratio clip"})
    vf_coef: float = field(default=0.1, metadata={"help": "value loss coefficient"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    target_kl: float | None = field(
        default=None, metadata={"help": "stop an update's epochs when approx KL > 1.5x this"}
    )
    init_kl_coef: float = field(default=0.15, metadata={"help": "initial KL coefficient beta"})
    adaptive_kl: bool = field(default=True, metadata={"help": "Ziegler's adaptive beta"})
    kl_target: float = field(default=6.0, metadata={"help": "adaptive KL target (nats/sequence)"})
    kl_horizon: int = field(default=10_000, metadata={"help": "adaptive KL horizon (sequences)"})
    missing_eos_penalty: float | None = field(
        default=-1.0, metadata={"help": "score added to completions that never emit EOS"}
    )
    critic: str = field(default="", metadata={"help": "reward model dir for a separate critic"})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning)"})
    ref_refresh_every: int = field(
        default=0, metadata={"help": "refresh reference every K (0: off)"}
    )
    whiten_rewards: bool = field(default=False, metadata={"help": "whiten rewards before GAE"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every K iterations (0: end)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch default)"})
    progress_bar: bool = field(default=False, metadata={"help": "SB3 progress bar"})
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1: metric tables)"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`TrainPPOConfig` options."""
    add_dataclass_arguments(parser, TrainPPOConfig)


def read_prompts(path: str) -> list[str]:
    """Non-empty lines of a text file."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def load_reward(config: TrainPPOConfig, tokenizer: Any) -> Any:
    """The proxy reward: a reward model dir, the toy gold utility, or ``module:function``."""
    if config.reward_model:
        from rlhf_gym.reward_models import load_reward_model

        return load_reward_model(config.reward_model, policy_tokenizer=tokenizer)
    if config.reward == "gold":
        from rlhf_gym.toy.gold import GoldUtility

        return GoldUtility()
    module, _, name = config.reward.partition(":")
    if not name:
        raise ValueError(f"--reward must be 'gold' or 'module:function', got {config.reward!r}.")
    return getattr(importlib.import_module(module), name)


def resolve_models(config: TrainPPOConfig) -> dict[str, Any]:
    """Policy/reference paths, tokenizer and prompts; the toy world fills what is not given."""
    from rlhf_gym.toy.gold import GoldUtility
    from transformers import AutoTokenizer

    toy = None
    if not (config.policy and config.prompts and config.eval_prompts and config.tokenizer):
        from rlhf_gym.toy import ToyWorld, build_toy_world

        artifacts = build_toy_world(config.toy_dir or None, seed=config.world_seed, progress=False)
        toy = (artifacts, ToyWorld())
    policy = config.policy or str(toy[0].sft_dir)
    tokenizer_dir = config.tokenizer or (str(toy[0].tokenizer_dir) if toy else policy)
    return {
        "policy": policy,
        "reference": config.reference or policy,
        "tokenizer": AutoTokenizer.from_pretrained(tokenizer_dir),
        "prompts": read_prompts(config.prompts) if config.prompts else toy[1].train_prompts,
        "eval_prompts": (
            read_prompts(config.eval_prompts) if config.eval_prompts else toy[1].heldout_prompts
        ),
        # Gold is known on the toy world's prompts, or when it is the reward itself.
        "gold": GoldUtility() if toy or config.reward == "gold" else None,
    }


def build_envs(
    config: TrainPPOConfig, models: dict[str, Any], reward: Any = None
) -> tuple[Any, Any]:
    """Training env and held-out evaluation env (sharing the frozen reference and reward).

    ``reward`` overrides the reward named in ``config`` (any reward source object).
    """
    from rlhf_gym.envs import TextGenerationVecEnv
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(models["reference"])
    reward = reward if reward is not None else load_reward(config, models["tokenizer"])
    common = {
        "tokenizer": models["tokenizer"],
        "reference_model": reference,
        "reward": reward,
        "max_prompt_tokens": config.max_prompt_tokens,
        "max_new_tokens": config.max_new_tokens,
        "kl_coef": config.init_kl_coef,
        "temperature": config.temperature,
        "missing_eos_penalty": config.missing_eos_penalty,
        "device": config.device,
    }
    train_env = TextGenerationVecEnv(config.num_envs, prompts=models["prompts"], **common)
    eval_env = TextGenerationVecEnv(
        config.eval_per_prompt * len(models["eval_prompts"]), prompts=models["eval_prompts"],
        **common,
    )
    return train_env, eval_env


def build_agent(config: TrainPPOConfig, models: dict[str, Any], env: Any) -> Any:
    """The :class:`~rlhf_gym.agents.ppo.LMPPO` agent for ``config``."""
    from rlhf_gym.agents.ppo import LMPPO

    policy_kwargs: dict[str, Any] = {"model": models["policy"]}
    if config.critic:
        policy_kwargs["critic"] = config.critic
    if config.lora_r:
        policy_kwargs["lora"] = {"r": config.lora_r, "lora_alpha": 2 * config.lora_r}
    return LMPPO(
        "LMPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps or config.max_new_tokens,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        clip_range=config.clip_range,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        target_kl=config.target_kl,
        init_kl_coef=config.init_kl_coef,
        adaptive_kl=config.adaptive_kl,
        kl_target=config.kl_target,
        kl_horizon=config.kl_horizon,
        ref_refresh_every=config.ref_refresh_every,
        whiten_rewards=config.whiten_rewards,
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=config.device,
        verbose=config.verbose,
    )


def evaluate(agent: Any, eval_env: Any, seed: int, gold: Any = None) -> dict[str, float]:
    """Proxy score, KL, length and diversity (and gold, if given) of held-out samples.

    The keys are the report's history keys (see :mod:`rlhf_gym.evaluation.plots`).
    """
    from rlhf_gym.agents.common.sampling import sample_episodes
    from rlhf_gym.evaluation.metrics import distinct_n

    episodes = sample_episodes(agent.policy, eval_env, seed=seed)
    completions = [e["completion"] for e in episodes]
    row = {
        "proxy": float(np.mean([e["score"] for e in episodes])),
        "kl": float(np.mean([e["kl"] for e in episodes])),
        "response_length": float(np.mean([e["length"] for e in episodes])),
        "distinct_1": distinct_n(completions, 1),
        "distinct_2": distinct_n(completions, 2),
    }
    if gold is not None:
        values = gold.score([e["prompt"] for e in episodes], completions)
        row.update(gold=float(np.mean(values)), gold_std=float(np.std(values)))
    return row


TRAIN_METRICS = (
    "objective/kl",
    "objective/scores",
    "objective/kl_coef",
    "policy/approxkl",
    "val/ratio",
    "time/rollout_s",
    "time/update_s",
)


def train(
    config: TrainPPOConfig,
    agent: Any,
    eval_env: Any,
    *,
    gold: Any = None,
    callbacks: list[Any] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run ``config.iterations`` PPO iterations, evaluating on held-out prompts after each.

    Returns:
        One record per iteration (iteration 0 is the starting policy), with the keys of
        :func:`evaluate` plus ``step``, ``timesteps``, ``seconds`` and the KL coefficient.

    Raises:
        NonFiniteLossError: when an update's loss is not finite (weights are left untouched).
    """
    steps = agent.n_steps * agent.n_envs
    rows = [
        {
            "step": 0,
            "timesteps": 0,
            "seconds": 0.0,
            "kl_coef": agent.kl_ctl.value,
            **evaluate(agent, eval_env, 10_000, gold),
        }
    ]
    log(_format_row(rows[-1]))
    train_seconds = 0.0  # rollouts and updates only, not the held-out evaluation
    for iteration in range(1, config.iterations + 1):
        start = time.perf_counter()
        agent.learn(
            steps,
            callback=callbacks,
            reset_num_timesteps=iteration == 1,
            progress_bar=config.progress_bar,
        )
        train_seconds += time.perf_counter() - start
        metrics = {k: agent.last_metrics.get(k, np.nan) for k in TRAIN_METRICS}
        rows.append(
            {
                "step": iteration,
                "timesteps": agent.num_timesteps,
                "seconds": round(train_seconds, 2),
                "kl_coef": agent.kl_ctl.value,
                **evaluate(agent, eval_env, 10_000 + iteration, gold),
                **metrics,
            }
        )
        log(_format_row(rows[-1]))
        if config.save_every and iteration % config.save_every == 0:
            agent.save(os.path.join(config.out_dir, "checkpoint"))
    return rows


def _format_row(row: dict[str, Any]) -> str:
    shown = ("proxy", "gold", "kl", "kl_coef", "response_length", "seconds")
    return f"iteration {row['step']}: " + ", ".join(
        f"{k}={row[k]:.3g}" for k in shown if isinstance(row.get(k), float)
    )


def run(args: argparse.Namespace) -> int:
    """Train, writing ``curves.csv`` and checkpoints; 0 on success, 1 on a non-finite loss."""
    from rlhf_gym.agents.ppo import NonFiniteLossError

    config = dataclass_from_args(TrainPPOConfig, args)
    if config.threads:
        torch.set_num_threads(config.threads)
    os.makedirs(config.out_dir, exist_ok=True)
    models = resolve_models(config)
    env, eval_env = build_envs(config, models)
    agent = build_agent(config, models, env)
    try:
        rows = train(config, agent, eval_env, gold=models["gold"])
    except NonFiniteLossError as err:
        print(f"stopped: {err}", file=sys.stderr)
        return 1
    write_curves(os.path.join(config.out_dir, "curves.csv"), rows)
    agent.save(os.path.join(config.out_dir, "final"))
    return 0


def write_curves(path: str, rows: list[dict[str, Any]]) -> None:
    """One CSV row per iteration (step 0 is the starting policy)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_ppo.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_ppo", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Train an LM policy with PPO on the token-level text env (the toy world by default).

Defaults: the toy world's SFT model is the policy and the reference; the reward is the toy gold
utility (``--reward gold``), a trained reward model (``--reward-model PATH``) or any callable
(``--reward module:function``). Every iteration appends a row to ``curves.csv`` with the gold
utility, the proxy score and the KL of samples on held-out prompts, plus the training metrics;
the final policy is saved to ``OUT_DIR/final`` (and ``OUT_DIR/checkpoint`` every K iterations).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from rlhf_gym.training.config import TrainPPOConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`~rlhf_gym.training.config.TrainPPOConfig` options."""
    add_dataclass_arguments(parser, TrainPPOConfig)


def run(args: argparse.Namespace) -> int:
    """Train, writing ``curves.csv`` and checkpoints; 0 on success, 1 on a non-finite loss."""
    from rlhf_gym.agents.common import NonFiniteLossError
    from rlhf_gym.training.builders import build_agent, build_env, build_evaluation
    from rlhf_gym.training.loop import IterationCheckpoint, run_iterations, write_curves
    from rlhf_gym.training.sources import load_reward, resolve_sources

    config = dataclass_from_args(TrainPPOConfig, args)
    if config.threads:
        torch.set_num_threads(config.threads)
    os.makedirs(config.out_dir, exist_ok=True)
    sources = resolve_sources(config)
    reward = load_reward(config, sources.tokenizer)
    env = build_env(config, sources, reward)
    agent = build_agent(config, sources, env)
    evaluation = build_evaluation(config, sources, reward, env)
    checkpoints = [IterationCheckpoint(os.path.join(config.out_dir, "checkpoint"),
                                       config.save_every)] if config.save_every else []
    try:
        rows = run_iterations(agent, config.iterations, evaluation, callbacks=checkpoints,
                              progress_bar=config.progress_bar)
    except NonFiniteLossError as err:
        print(f"stopped: {err}", file=sys.stderr)
        return 1
    write_curves(os.path.join(config.out_dir, "curves.csv"), rows)
    agent.save(os.path.join(config.out_dir, "final"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_ppo.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_ppo", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Train an LM policy with PPO on the token-level text env (the toy world by default).

Defaults: the toy world's SFT model is the policy and the reference; the reward is the toy gold
utility (``--reward gold``), a trained reward model (``--reward-model PATH``) or any callable
(``--reward module:function``). Every iteration appends a row to ``curves.csv`` with the gold
utility, the proxy score and the KL of samples on held-out prompts, plus the training metrics;
the final policy is saved to ``OUT_DIR/final`` (and ``OUT_DIR/checkpoint`` every K iterations).
``--resume OUT_DIR`` continues a run from ``OUT_DIR/checkpoint`` exactly (docs/checkpoints.md).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from rlhf_gym.scripts.config import add_dataclass_arguments, dataclass_from_args
from rlhf_gym.training.config import TrainPPOConfig

CONFIG = TrainPPOConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the :class:`~rlhf_gym.training.config.TrainPPOConfig` options."""
    add_dataclass_arguments(parser, TrainPPOConfig)


def run(args: argparse.Namespace) -> int:
    """Train, writing ``curves.csv`` and checkpoints; 0 on success, 1 on a non-finite loss."""
    from rlhf_gym.agents.common import NonFiniteLossError
    from rlhf_gym.training import builders
    from rlhf_gym.training.loop import CurvesWriter, run_iterations, write_curves
    from rlhf_gym.training.sources import load_reward, resolve_sources

    config = dataclass_from_args(TrainPPOConfig, args)
    if config.resume:  # the saved run's settings; its agent and records below
        config = builders.load_resumed_config(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    os.makedirs(config.output_dir, exist_ok=True)
    sources = resolve_sources(config)
    reward = load_reward(config, sources.tokenizer)
    env = builders.build_env(config, sources, reward)
    agent, records = (builders.resume_agent(config, env) if config.resume
                      else (builders.build_agent(config, sources, env), []))
    builders.configure_tracking(agent, config)
    evaluation = builders.build_evaluation(config, sources, reward, env)
    curves = CurvesWriter(os.path.join(config.output_dir, "curves.csv"), evaluation)
    callbacks = [curves, *builders.build_checkpoints(config, evaluation)]
    try:
        rows = run_iterations(agent, config.iterations, evaluation, callbacks=callbacks,
                              progress=config.progress, records=records)
    except NonFiniteLossError as err:
        print(f"stopped: {err}", file=sys.stderr)
        return 1
    write_curves(os.path.join(config.output_dir, "curves.csv"), rows)
    agent.save(os.path.join(config.output_dir, "final"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_ppo.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_ppo", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Train an LM policy with PPO on the token-level text env (the toy world by default).

With nothing real named, the toy world's SFT model is the policy and the reference and the
reward is the toy gold utility. Name your own policy (``--policy``) and every other piece must
be yours too: prompts (``--prompts``, ``--eval-prompts`` or ``--eval-prompts-split``) and a
reward (``--reward-model`` or ``--reward module:function``); the tokenizer comes from the
policy's folder (docs/own_models.md). Every iteration appends a row to ``curves.csv`` with the
proxy score and the KL of samples on held-out prompts (and the gold utility on the toy world),
plus the training metrics; the final policy is saved to ``OUTPUT_DIR/final`` (its ``policy/``
loads with plain transformers; with LoRA, ``merged/`` does) and to ``OUTPUT_DIR/checkpoint``
every K iterations. ``--resume OUTPUT_DIR`` continues a run from its checkpoint exactly
(docs/checkpoints.md).
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
    from rlhf_gym import distributed
    from rlhf_gym.agents.common import NonFiniteLossError
    from rlhf_gym.training import builders
    from rlhf_gym.training.loop import CurvesWriter, run_iterations, write_curves
    from rlhf_gym.training.outputs import save_final
    from rlhf_gym.training.sources import load_reward, resolve_sources

    config = dataclass_from_args(TrainPPOConfig, args)
    distributed.init_from_env()  # a no-op unless launched by torchrun / accelerate launch
    main = distributed.is_main_process()
    if config.resume:  # the saved run's settings; its agent and records below
        config = builders.load_resumed_config(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    with distributed.main_process_first():  # downloads and the toy build happen once
        sources = resolve_sources(config)  # a missing piece fails here, before any model loads
        os.makedirs(config.output_dir, exist_ok=True)
        reward = load_reward(config, sources.tokenizer)
        models = builders.load_models(config, sources)
    env = builders.build_env(config, sources, reward, models.reference)
    agent, records = (
        builders.resume_agent(config, env, models.lora)
        if config.resume
        else (builders.build_agent(config, sources, env, models.lora), [])
    )
    if main:  # SB3's writers create their files as soon as they are configured
        builders.configure_tracking(agent, config)
    evaluation = builders.build_evaluation(config, sources, reward, env)
    curves = CurvesWriter(os.path.join(config.output_dir, "curves.csv"), evaluation)
    callbacks = [curves, *builders.build_checkpoints(config, evaluation)]
    try:
        rows = run_iterations(
            agent,
            config.iterations,
            evaluation,
            callbacks=callbacks,
            progress=config.progress and main,
            records=records,
        )
    except NonFiniteLossError as err:
        print(f"stopped: {err}", file=sys.stderr)
        return 1
    saved = save_final(agent, config)  # collective: every rank takes part in the save
    if main:
        write_curves(os.path.join(config.output_dir, "curves.csv"), rows)
        print(f"saved the policy to {saved}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python scripts/train_ppo.py --help``."""
    from rlhf_gym.scripts.cli import run_script

    return run_script("rlhf_gym.scripts.train_ppo", argv)


if __name__ == "__main__":
    sys.exit(main())

"""What a PPO job's config names, resolved: models, tokenizer, prompts, reward and gold.

Every setting left empty falls back to the toy world (:func:`~rlhf_gym.toy.toy_defaults`),
which is then built or loaded from its cache.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

from rlhf_gym.envs.prompts import read_prompts
from rlhf_gym.lm.loading import load_tokenizer
from rlhf_gym.training.config import TrainPPOConfig


@dataclass
class PPOSources:
    """The resolved pieces of a PPO job.

    Attributes:
        policy: the policy's name or folder (the SFT model).
        reference: the reference's name or folder.
        tokenizer: the policy's tokenizer.
        prompts: training prompts.
        eval_prompts: held-out prompts.
        gold: the gold utility where it is known (toy prompts, or gold as the reward), else None.
    """

    policy: str
    reference: str
    tokenizer: Any
    prompts: list[str]
    eval_prompts: list[str]
    gold: Any = None


def resolve_sources(config: TrainPPOConfig) -> PPOSources:
    """Resolve the config's models and prompts; the toy world fills what is not given."""
    toy = None
    if not (config.policy and config.prompts and config.eval_prompts and config.tokenizer):
        from rlhf_gym.toy import toy_defaults

        toy = toy_defaults(config.toy_dir, world_seed=config.world_seed)
    policy = config.policy or toy.policy
    gold = None
    if toy is not None or config.reward == "gold":
        from rlhf_gym.toy import GoldUtility

        gold = GoldUtility()
    return PPOSources(
        policy=policy,
        reference=config.reference or policy,
        tokenizer=load_tokenizer(config.tokenizer or (toy.tokenizer if toy else policy)),
        prompts=read_prompts(config.prompts) if config.prompts else toy.train_prompts,
        eval_prompts=(
            read_prompts(config.eval_prompts) if config.eval_prompts else toy.heldout_prompts
        ),
        gold=gold,
    )


def load_reward(config: TrainPPOConfig, tokenizer: Any) -> Any:
    """The proxy reward: a reward model dir, the toy gold utility, or ``module:function``."""
    if config.reward_model:
        from rlhf_gym.reward_models import load_reward_model

        return load_reward_model(config.reward_model, policy_tokenizer=tokenizer)
    if config.reward == "gold":
        from rlhf_gym.toy import GoldUtility

        return GoldUtility()
    module, _, name = config.reward.partition(":")
    if not name:
        raise ValueError(f"--reward must be 'gold' or 'module:function', got {config.reward!r}.")
    if os.getcwd() not in sys.path:  # a module in the working folder, as `python -m` finds it
        sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"--reward {config.reward}: cannot import {name!r} from {module!r} ({err}); the module "
            "must be importable from the working folder or PYTHONPATH."
        ) from err
    if not callable(function):
        raise ValueError(f"--reward {config.reward}: {name!r} is not callable.")
    return function

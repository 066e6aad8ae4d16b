"""What a PPO job's config names, resolved: models, tokenizer, prompts, reward and gold.

**The toy world is all or nothing.** With nothing real named, every piece is the toy world's
(:func:`~rlhf_gym.toy.toy_defaults`), built or loaded from its cache, and the gold utility is
both the default reward and a metric. Once any real piece is named (``--policy``,
``--reference``, ``--tokenizer``, ``--prompts``, ``--eval-prompts``, or a ``--reward-model``
that ``train-rm`` did not train on the toy world), nothing is taken from the toy world: the
tokenizer comes from the policy's folder, and every other piece must be named, else an error
names the missing flag. ``--policy toy`` asks for the toy world explicitly (say, to train the
toy SFT policy against a reward model of your own).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_gym.envs.prompts import read_prompts
from rlhf_gym.lm.encoding import encode_prompts
from rlhf_gym.lm.loading import has_tokenizer, load_tokenizer, max_positions
from rlhf_gym.training.config import TrainPPOConfig

#: ``--policy toy``: the toy world's SFT policy, asked for explicitly.
TOY = "toy"
#: The file ``train-rm`` writes next to a reward model: its settings and ``"world"``.
RM_RECORD = "train_rm.json"
#: The toy world's prompt budget (its prompts are at most this long).
TOY_PROMPT_TOKENS = 8
#: Flags that name a piece of the user's own (the reward model is checked apart).
OWN_PIECES = ("policy", "reference", "tokenizer", "prompts", "eval_prompts")


@dataclass
class PPOSources:
    """The resolved pieces of a PPO job.

    Attributes:
        policy: the policy's name or folder (the SFT model).
        reference: the reference's name or folder.
        tokenizer: the policy's tokenizer.
        prompts: training prompts.
        eval_prompts: held-out prompts.
        gold: the gold utility on the toy world (or as the named reward), else None.
        toy: whether the job runs on the toy world.
    """

    policy: str
    reference: str
    tokenizer: Any
    prompts: list[str]
    eval_prompts: list[str]
    gold: Any = None
    toy: bool = False


def is_toy_reward_model(path: str) -> bool:
    """Whether ``train-rm`` trained the reward model in ``path`` on the toy world."""
    record = Path(path) / RM_RECORD
    if not record.is_file():
        return False
    return json.loads(record.read_text(encoding="utf-8")).get("world") == TOY


def own_pieces(config: TrainPPOConfig) -> list[str]:
    """The flags that name the user's own pieces, in order."""
    named = ["--" + n.replace("_", "-") for n in OWN_PIECES if getattr(config, n)]
    if config.policy == TOY:
        named.remove("--policy")
    if config.reward_model and not is_toy_reward_model(config.reward_model):
        named.append("--reward-model")
    return named


def uses_toy_world(config: TrainPPOConfig) -> bool:
    """Whether the job runs on the toy world: nothing real named, or ``--policy toy``."""
    return config.policy == TOY or not own_pieces(config)


def check_pieces(config: TrainPPOConfig) -> None:
    """Raise naming the missing flag when some own pieces are named but not all.

    Raises:
        ValueError: for a missing policy, prompts, held-out prompts or reward.
    """
    if uses_toy_world(config):
        return
    named = own_pieces(config)
    pieces = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
    why = f"you named your own {pieces}, so train-ppo takes nothing from the toy world"
    if not config.policy:
        raise ValueError(
            f"{why}: name the policy with --policy MODEL (or --policy toy for the toy world's "
            "SFT policy)."
        )
    if not config.prompts:
        raise ValueError(
            f"{why}: name the training prompts with --prompts SOURCE (a text, JSONL or parquet "
            "file, a save_to_disk folder or a hub dataset)."
        )
    if not config.eval_prompts and not config.eval_prompts_split:
        raise ValueError(
            f"{why}: name held-out prompts with --eval-prompts SOURCE, or hold out another "
            "split of --prompts with --eval-prompts-split (e.g. test)."
        )
    if not config.eval_prompts and config.eval_prompts_split == config.prompts_split:
        raise ValueError(
            f"--eval-prompts-split {config.eval_prompts_split} is --prompts-split too, so the "
            "held-out prompts would be the training prompts; hold out another split or name "
            "--eval-prompts."
        )
    if not config.reward_model and not config.reward:
        raise ValueError(
            f"{why}: name the reward with --reward-model FOLDER (a trained reward model) or "
            "--reward module:function (--reward gold is the toy world's utility, for toy text)."
        )


def resolve_sources(config: TrainPPOConfig) -> PPOSources:
    """Resolve the config's models and prompts (see the module doc for the toy-world rule).

    Raises:
        ValueError: naming the flag of a missing piece, before anything is loaded.
    """
    check_pieces(config)
    if uses_toy_world(config):
        return toy_sources(config)
    tokenizer = policy_tokenizer(config)
    return PPOSources(
        policy=config.policy,
        reference=config.reference or config.policy,
        tokenizer=tokenizer,
        prompts=training_prompts(config, tokenizer),
        eval_prompts=held_out_prompts(config, tokenizer),
        gold=gold_utility() if config.reward == "gold" else None,
    )


def toy_sources(config: TrainPPOConfig) -> PPOSources:
    """The toy world's pieces, under the ones named (``--policy toy`` with own prompts, ...)."""
    from rlhf_gym.toy import toy_defaults

    toy = toy_defaults(config.toy_dir, world_seed=config.world_seed)
    tokenizer = load_tokenizer(config.tokenizer or toy.tokenizer)
    named_eval = config.eval_prompts or (config.prompts and config.eval_prompts_split)
    return PPOSources(
        policy=toy.policy,
        reference=config.reference or toy.policy,
        tokenizer=tokenizer,
        prompts=training_prompts(config, tokenizer) if config.prompts else toy.train_prompts,
        eval_prompts=held_out_prompts(config, tokenizer) if named_eval else toy.heldout_prompts,
        gold=gold_utility(),
        toy=True,
    )


def policy_tokenizer(config: TrainPPOConfig) -> Any:
    """``--tokenizer``, else the tokenizer saved in the policy's folder.

    Raises:
        ValueError: when the policy folder has no tokenizer and none is named.
    """
    if config.tokenizer:
        return load_tokenizer(config.tokenizer)
    if not has_tokenizer(config.policy):
        raise ValueError(
            f"--policy {config.policy} holds no tokenizer (no tokenizer_config.json); name the "
            "policy's tokenizer with --tokenizer."
        )
    return load_tokenizer(config.policy)


def training_prompts(config: TrainPPOConfig, tokenizer: Any) -> list[str]:
    """``--prompts``' split ``--prompts-split``, column ``--prompt-column``."""
    return read_prompts(
        config.prompts, split=config.prompts_split, column=config.prompt_column,
        tokenizer=tokenizer,
    )  # fmt: skip


def held_out_prompts(config: TrainPPOConfig, tokenizer: Any) -> list[str]:
    """``--eval-prompts`` (split train by default), else ``--prompts``' held-out split."""
    return read_prompts(
        config.eval_prompts or config.prompts,
        split=config.eval_prompts_split or "train",
        column=config.eval_prompt_column or config.prompt_column,
        tokenizer=tokenizer,
    )


def prompt_budget(config: TrainPPOConfig, sources: PPOSources) -> int:
    """``--max-prompt-tokens``, or when 0 the budget derived from the pieces.

    The toy world keeps 8 tokens. Otherwise the budget is the longest prompt (training and
    held-out, encoded as the env encodes them), at most the policy's positions minus
    ``--max-new-tokens`` (then longer prompts keep their last tokens, with the env's warning).

    Raises:
        ValueError: when ``--max-new-tokens`` leaves no room for a prompt.
    """
    if config.max_prompt_tokens:
        return config.max_prompt_tokens
    if sources.toy:
        return TOY_PROMPT_TOKENS
    prompts = list(sources.prompts) + list(sources.eval_prompts)
    longest = max(len(ids) for ids in encode_prompts(sources.tokenizer, prompts))
    positions = max_positions(sources.policy)
    if positions is None:
        return longest
    room = positions - config.max_new_tokens
    if room < 1:
        raise ValueError(
            f"--max-new-tokens {config.max_new_tokens} leaves no room for a prompt in the "
            f"policy's {positions} positions; lower --max-new-tokens."
        )
    return min(room, longest)


def gold_utility() -> Any:
    """The toy world's gold utility (imported on use: the toy world is optional)."""
    from rlhf_gym.toy import GoldUtility

    return GoldUtility()


def load_reward(config: TrainPPOConfig, tokenizer: Any) -> Any:
    """The proxy reward: a reward model, the toy gold utility, or ``module:function``.

    A reward model is loaded in ``--dtype`` (it is frozen) and reads the policy's tokens through
    ``tokenizer``.
    """
    if config.reward_model:
        from rlhf_gym.lm.loading import torch_dtype
        from rlhf_gym.reward_models import load_reward_model

        reward = load_reward_model(config.reward_model, policy_tokenizer=tokenizer)
        reward.model.to(torch_dtype(config.dtype))
        return reward
    if config.reward in ("gold", ""):  # "" only reaches here on the toy world
        return gold_utility()
    return import_reward(config.reward)


def import_reward(spec: str) -> Any:
    """The callable ``module:function`` names.

    Raises:
        ValueError: for another form, an import that fails, or something not callable.
    """
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--reward must be 'gold' or 'module:function', got {spec!r}.")
    if os.getcwd() not in sys.path:  # a module in the working folder, as `python -m` finds it
        sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"--reward {spec}: cannot import {name!r} from {module!r} ({err}); the module "
            "must be importable from the working folder or PYTHONPATH."
        ) from err
    if not callable(function):
        raise ValueError(f"--reward {spec}: {name!r} is not callable.")
    return function

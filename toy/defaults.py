"""The one place that says what the toy world supplies when a setting is left to its default.

The env's ``rlhf_gym/ToyTextGeneration-v0``, ``train-ppo``, ``train-rm`` and ``evaluate`` all
fall back to the same pieces: the SFT policy (also the reference), its tokenizer, the training
and held-out prompts, the preference pairs, the gold utility and the simulated labeler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_gym.toy.build import ToyArtifacts, build_toy_world
from rlhf_gym.toy.gold import GoldUtility
from rlhf_gym.toy.labeler import SimulatedLabeler


@dataclass(frozen=True)
class ToyDefaults:
    """The toy world's stand-ins for every piece a user can name.

    Attributes:
        artifacts: the built (or cached) artifacts.
        policy: the SFT folder, the default policy and reference.
        tokenizer: the tokenizer folder.
        train_prompts: prompts for RL training.
        heldout_prompts: prompts for evaluation (items never seen in training).
        preferences: the JSONL file of labelled pairs.
        gold: the gold utility, a reward source.
        labeler: the simulated labeler (its Bayes ceiling bounds any reward model).
    """

    artifacts: ToyArtifacts
    policy: str
    tokenizer: str
    train_prompts: list[str]
    heldout_prompts: list[str]
    preferences: str
    gold: GoldUtility
    labeler: SimulatedLabeler


def toy_defaults(
    toy_dir: str | Path | None = None,
    *,
    world_seed: int = 0,
    progress: bool = False,
    **build_kwargs: Any,
) -> ToyDefaults:
    """Build (or load from the cache) the toy world and return its default pieces.

    Args:
        toy_dir: the cache root; None or "" for ``$RLHF_GYM_CACHE`` or ``~/.cache/rlhf_gym``.
        world_seed: the world's seed (``build_toy_world(seed=...)``).
        progress: show the build's progress bars.
        **build_kwargs: more :func:`~rlhf_gym.toy.build_toy_world` arguments
            (``num_pairs``, ``sft_config``).
    """
    artifacts = build_toy_world(
        toy_dir or None, seed=world_seed, progress=progress, **build_kwargs
    )
    world = artifacts.world
    return ToyDefaults(
        artifacts=artifacts,
        policy=str(artifacts.sft_dir),
        tokenizer=str(artifacts.tokenizer_dir),
        train_prompts=list(world.train_prompts),
        heldout_prompts=list(world.heldout_prompts),
        preferences=str(artifacts.preferences_path),
        gold=GoldUtility(),
        labeler=SimulatedLabeler(world),
    )

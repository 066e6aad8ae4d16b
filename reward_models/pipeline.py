"""From preference data and a base causal LM to a trained :class:`RewardModel`, in one call."""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import numpy as np
from rlhf_gym.reward_models.data import PreferencePair, load_preferences
from rlhf_gym.reward_models.encoding import Truncation, encode_pairs
from rlhf_gym.reward_models.model import HeadKind, init_reward_model
from rlhf_gym.reward_models.reward_model import RewardModel
from rlhf_gym.reward_models.trainer import RewardTrainingConfig, train_reward_network
from transformers import AutoTokenizer

logger = logging.getLogger(__name__)


def split_rows(rows: list[Any], eval_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Seeded shuffle, then the last ``eval_fraction`` of rows is held out."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must lie in (0, 1), got {eval_fraction}.")
    order = np.random.default_rng(seed).permutation(len(rows))
    n_eval = max(1, round(eval_fraction * len(rows)))
    if n_eval >= len(rows):
        raise ValueError(
            f"{len(rows)} pairs are too few to hold out {eval_fraction:.0%} and still train."
        )
    return [rows[i] for i in order[n_eval:]], [rows[i] for i in order[:n_eval]]


class TrainedRewardModel(NamedTuple):
    """What :func:`train_reward_model` returns."""

    model: RewardModel
    metrics: dict[str, float]
    eval_pairs: list[PreferencePair]


def train_reward_model(
    base_model: str | os.PathLike,
    preferences: Any,
    *,
    tokenizer: Any = None,
    config: RewardTrainingConfig | None = None,
    eval_fraction: float = 0.1,
    max_length: int = 256,
    truncation: Truncation = "error",
    skip_invalid: bool = False,
    head: HeadKind = "auto",
    output_dir: str | None = None,
) -> TrainedRewardModel:
    """Train a reward model initialised from ``base_model`` on ``preferences``.

    Args:
        base_model: name or path of the causal LM to start from (the SFT policy).
        preferences: anything :func:`~rlhf_gym.reward_models.data.load_preferences` reads.
        tokenizer: defaults to the one saved with ``base_model``.
        config: optimisation settings.
        eval_fraction: share of pairs held out for accuracy.
        max_length: longest sequence; see :mod:`rlhf_gym.reward_models.encoding` for the policy.
        truncation: ``"error"`` or ``"left"`` (drop prompt tokens from the left).
        skip_invalid: skip (and count) bad rows instead of raising.
        head: ``"auto"``, ``"sequence_classification"`` or ``"linear"``.
        output_dir: Trainer scratch folder (a temp dir by default; no checkpoints are written).

    Returns:
        The trained model (gain 1, bias 0 until normalised), metrics (``eval_accuracy``,
        ``eval_loss``, ``skipped_rows``, ``truncated_pairs``, ``train_pairs``, ``eval_pairs``)
        and the held-out pairs.
    """
    config = config or RewardTrainingConfig()
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(base_model)
    data = load_preferences(preferences, tokenizer=tokenizer, skip_invalid=skip_invalid)
    encoded = encode_pairs(
        data.pairs,
        tokenizer,
        max_length=max_length,
        truncation=truncation,
        skip_invalid=skip_invalid,
    )
    train_rows, eval_rows = split_rows(encoded.rows, eval_fraction, config.seed)
    network = init_reward_model(
        base_model,
        pad_token_id=tokenizer.pad_token_id,
        head=head,
        vocab_size=len(tokenizer),
        seed=config.seed,
    )
    metrics = train_reward_network(
        network, tokenizer.pad_token_id, train_rows, eval_rows, config, output_dir
    )
    metrics.update(
        skipped_rows=len(data.skipped) + encoded.skipped,
        truncated_pairs=encoded.truncated,
        train_pairs=len(train_rows),
        eval_pairs=len(eval_rows),
    )
    logger.info("reward model trained: %s", metrics)
    held_out = [data.pairs[row["pair"]] for row in eval_rows]
    return TrainedRewardModel(
        RewardModel(network, tokenizer, max_length=max_length), metrics, held_out
    )

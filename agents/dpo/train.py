"""From preference pairs and an SFT policy to a DPO-trained policy, in one call."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from rlhf_gym.agents.dpo.config import DPOConfig
from rlhf_gym.agents.dpo.data import DPOCollator, add_reference_logprobs, encode_dpo_pairs
from rlhf_gym.agents.dpo.trainer import DPOTrainer, held_out_metrics
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.lm.loading import ModelLike, load_causal_lm, load_tokenizer, max_positions
from rlhf_gym.reward_models.data import load_preferences
from rlhf_gym.reward_models.pipeline import split_rows
from rlhf_gym.reward_models.trainer import CSVLogCallback, progress_bars_on, training_arguments
from torch import nn
from transformers import PreTrainedModel, TrainerCallback

logger = logging.getLogger(__name__)


class TrainedDPO(NamedTuple):
    """What :func:`train_dpo` returns: the trained policy (eval mode) and its metrics."""

    model: PreTrainedModel
    metrics: dict[str, float]


def _check_length(policy: nn.Module, max_length: int) -> None:
    positions = max_positions(policy)
    if positions is not None and max_length > positions:
        raise ValueError(
            f"max_length={max_length} exceeds the policy's {positions} positions; pass "
            f"--max-length {positions} or less."
        )


def train_dpo(
    policy: ModelLike,
    preferences: Any,
    *,
    tokenizer: Any = None,
    config: DPOConfig | None = None,
    eval_fraction: float | None = None,
    output_dir: str | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainedDPO:
    """Train ``policy`` with DPO on ``preferences``, against itself before training as reference.

    Args:
        policy: the SFT policy (a name, folder or model); loaded in float32 with dropout off
            (:func:`~rlhf_gym.lm.loading.load_causal_lm`, built modules included).
        preferences: anything :func:`~rlhf_gym.reward_models.data.load_preferences` reads, or
            its :class:`~rlhf_gym.reward_models.data.PreferenceData`.
        tokenizer: the policy's tokenizer (or a name/folder); defaults to the policy folder's.
        config: optimisation settings.
        eval_fraction: share of pairs held out; None takes ``config.eval_fraction``.
        output_dir: the Trainer's log folder (a temp dir by default; no checkpoints written).
        callbacks: more ``transformers.TrainerCallback``s (say, a held-out evaluation at some
            steps: ``train-dpo --curve-points``); they see the policy as ``model``.

    Returns:
        The trained model and metrics: the held-out ``eval_loss`` and ``eval_dpo/...`` implicit
        rewards after each epoch's end, ``train_pairs``, ``eval_pairs``, ``processes``.
    """
    config = config or DPOConfig()
    fraction = config.eval_fraction if eval_fraction is None else eval_fraction
    if tokenizer is None and not isinstance(policy, str | Path):
        raise ValueError("a policy passed as a model needs its tokenizer: pass tokenizer=...")
    tokenizer = load_tokenizer(tokenizer if tokenizer is not None else policy)
    data = preferences if hasattr(preferences, "pairs") else load_preferences(
        preferences, tokenizer=tokenizer)  # fmt: skip
    rows = encode_dpo_pairs(data.pairs, tokenizer, max_length=config.max_length,
                            truncation=config.truncation)  # fmt: skip
    train_rows, eval_rows = split_rows(rows, fraction, config.seed)
    model = load_causal_lm(policy, device=resolve_device("auto"), dtype=torch.float32)
    _check_length(model, config.max_length)
    for part in (train_rows, eval_rows):  # the reference is the policy before any update
        add_reference_logprobs(model, part, tokenizer.pad_token_id)
    metrics = _fit(model, tokenizer.pad_token_id, train_rows, eval_rows, config, output_dir,
                   callbacks)  # fmt: skip
    metrics.update(train_pairs=len(train_rows), eval_pairs=len(eval_rows))
    logger.info("DPO trained: %s", metrics)
    return TrainedDPO(model.eval(), metrics)


def _fit(
    model: nn.Module, pad_id: int, train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]], config: DPOConfig, output_dir: str | None,
    callbacks: Sequence[TrainerCallback] = (),
) -> dict[str, float]:  # fmt: skip
    """Run the Trainer; return the final held-out metrics and the process count."""
    args = training_arguments(config, output_dir, epochs=config.dpo_epochs)
    csv_log = [CSVLogCallback(Path(args.output_dir) / "log.csv")] if config.report_to == "csv" \
        else []  # fmt: skip
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
        data_collator=DPOCollator(pad_id), compute_metrics=held_out_metrics,
        beta=config.kl_coef, callbacks=[*csv_log, *callbacks] or None,
    )  # fmt: skip
    console = (contextlib.nullcontext() if config.print_logs
               else contextlib.redirect_stdout(io.StringIO()))  # fmt: skip
    with console, progress_bars_on():
        trainer.train()
        return {**trainer.evaluate(), "processes": trainer.args.world_size}

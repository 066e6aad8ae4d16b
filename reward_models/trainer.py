"""Bradley-Terry reward-model training on top of ``transformers.Trainer``.

:class:`RewardTrainer` overrides only ``compute_loss`` and ``prediction_step``; everything else
(AdamW, warmup plus linear or cosine decay, logging, tqdm, seeding, and multi-GPU through
accelerate / ``torchrun`` / DeepSpeed) is the Trainer's own. Loss per pair:

    -log sigmoid(r_w - r_l - margin) + c * (r_w + r_l)^2      (averaged over the batch)
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from rlhf_gym.reward_models.encoding import PairwiseCollator
from rlhf_gym.reward_models.model import reward_forward
from torch import nn
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging


def pairwise_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """Mean of ``-log sigmoid(r_w - r_l - margin) + c * (r_w + r_l)^2`` over the batch."""
    diff = chosen - rejected - (margin if margin is not None else 0.0)
    loss = -F.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    return loss


def pair_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    """Fraction of held-out pairs whose chosen completion scores higher (``compute_metrics``)."""
    rewards = np.asarray(prediction.predictions)
    return {"accuracy": float((rewards[:, 0] > rewards[:, 1]).mean())}


class RewardTrainer(Trainer):
    """A ``Trainer`` for pairwise batches from :class:`PairwiseCollator` (chosen rows first)."""

    def __init__(self, *args: Any, center_coef: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.center_coef = center_coef

    def _pair_rewards(
        self, model: nn.Module, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rewards = reward_forward(model, inputs["input_ids"], inputs["attention_mask"])
        half = inputs["margin"].shape[0]
        return rewards[:half], rewards[half:]

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Pairwise Bradley-Terry loss (a per-batch mean)."""
        chosen, rejected = self._pair_rewards(model, inputs)
        loss = pairwise_loss(chosen, rejected, inputs["margin"], self.center_coef)
        return (loss, {"chosen": chosen, "rejected": rejected}) if return_outputs else loss

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Return the loss and the ``(batch, 2)`` rewards (chosen, rejected) for the metrics."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            chosen, rejected = self._pair_rewards(model, inputs)
            loss = pairwise_loss(chosen, rejected, inputs["margin"], self.center_coef).detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, torch.stack([chosen, rejected], dim=1), torch.zeros_like(chosen)


@dataclass
class RewardTrainingConfig:
    """Optimisation settings of reward-model training."""

    learning_rate: float = field(
        default=1e-3, metadata={"help": "peak AdamW learning rate", "min": 0.0}
    )
    rm_epochs: float = field(
        default=2.0, metadata={"help": "passes over the training pairs", "min": 0.0}
    )
    batch_size: int = field(default=32, metadata={"help": "pairs per optimiser step", "min": 1})
    lr_scheduler: Literal["linear", "cosine"] = field(
        default="cosine", metadata={"help": "learning-rate decay after warmup"}
    )
    warmup_ratio: float = field(
        default=0.05,
        metadata={"help": "fraction of steps spent warming up", "min": 0.0, "max": 1.0},
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay", "min": 0.0})
    center_coef: float = field(
        default=0.01, metadata={"help": "c in c*mean((r_w+r_l)^2); 0 disables", "min": 0.0}
    )
    seed: int = field(default=0, metadata={"help": "seed of head init, shuffling and split"})
    logging_steps: int = field(
        default=20, metadata={"help": "log train loss every this many steps", "min": 1}
    )
    report_to: Literal["none", "tensorboard", "csv", "wandb"] = field(
        default="none", metadata={"help": "where the training curves go (besides the console)"}
    )
    dtype: Literal["float32", "bfloat16", "float16"] = field(
        default="float32",
        metadata={
            "help": "half precision for frozen models (the normalisation sampler) and, on a GPU, "
            "autocast in training; trained weights and Adam state stay float32"
        },
    )
    print_logs: bool = field(
        default=True, metadata={"help": "print the Trainer's loss and eval dicts to stdout"}
    )


def training_arguments(
    config: Any, output_dir: str | None = None, epochs: float | None = None
) -> TrainingArguments:
    """Translate our config into ``TrainingArguments`` (no checkpoints; evaluation per epoch).

    Shared by the reward and DPO trainers: ``config`` is a :class:`RewardTrainingConfig` or
    anything with its optimisation fields (``dtype`` optional, float32 without it); ``epochs``
    overrides ``config.rm_epochs``. ``batch_size`` is the global batch: under a launcher each
    of K processes takes 1/K of it.

    ``report_to`` "tensorboard" or "wandb" is the Trainer's own reporter, writing under
    ``output_dir``; "csv" is :class:`CSVLogCallback`'s (see :func:`train_reward_network`).
    """
    return TrainingArguments(
        output_dir=output_dir or tempfile.mkdtemp(prefix="rlhf_gym_trainer_"),
        learning_rate=config.learning_rate,
        num_train_epochs=config.rm_epochs if epochs is None else epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(config.batch_size, 64),
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[config.report_to] if config.report_to in ("tensorboard", "wandb") else "none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Under a launcher (torchrun, accelerate launch) on CPUs the Trainer runs data-parallel
        # only when told it is on CPU; split_batches keeps batch_size the global batch, so K
        # processes take the same optimiser steps as one.
        use_cpu=not torch.cuda.is_available(),
        bf16=getattr(config, "dtype", "float32") == "bfloat16" and torch.cuda.is_available(),
        fp16=getattr(config, "dtype", "float32") == "float16" and torch.cuda.is_available(),
        accelerator_config={"split_batches": True},
    )


def train_reward_network(
    model: nn.Module,
    pad_token_id: int,
    train_rows: Sequence[dict[str, Any]],
    eval_rows: Sequence[dict[str, Any]],
    config: RewardTrainingConfig,
    output_dir: str | None = None,
) -> dict[str, float]:
    """Train ``model`` in place on encoded pairs; return the final held-out metrics.

    ``processes`` in the result is the number of data-parallel processes the Trainer used.
    """
    args = training_arguments(config, output_dir)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=list(train_rows),
        eval_dataset=list(eval_rows),
        data_collator=PairwiseCollator(pad_token_id),
        compute_metrics=pair_accuracy,
        center_coef=config.center_coef,
        callbacks=[CSVLogCallback(Path(args.output_dir) / "log.csv")]
        if config.report_to == "csv" else None,
    )
    # The Trainer prints its log dicts on stdout and its progress bars on stderr: a quiet run
    # (the demo) keeps the bars and drops the dicts; the metrics are returned either way.
    console = (contextlib.nullcontext() if config.print_logs
               else contextlib.redirect_stdout(io.StringIO()))
    with console, progress_bars_on():
        trainer.train()
        model.eval()
        return {**trainer.evaluate(), "processes": trainer.args.world_size}


@contextlib.contextmanager
def progress_bars_on() -> Iterator[None]:
    """The Trainer's progress bar, even where the CLI silenced transformers' other bars."""
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        yield
    finally:
        if not was_on:
            hf_logging.disable_progress_bar()


class CSVLogCallback(TrainerCallback):
    """Append every log event of the Trainer (train loss, held-out accuracy) to a CSV file.

    Each row is written as it happens, so a crash keeps what was logged; the header is the
    union of the keys seen so far (the file is rewritten when a new key appears).
    """

    def __init__(self, path: str | Path) -> None:
        self.path, self.rows = Path(path), []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **_: Any):
        """Record one event (``step``, ``epoch`` and the logged values)."""
        if not logs or not state.is_world_process_zero:
            return
        self.rows.append({"step": state.global_step, "epoch": state.epoch, **logs})
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)

"""Bradley-Terry reward-model training on top of ``transformers.Trainer``.

:class:`RewardTrainer` overrides only ``compute_loss`` and ``prediction_step``; everything else
(AdamW, warmup plus linear or cosine decay, logging, tqdm, seeding, and multi-GPU through
accelerate / ``torchrun`` / DeepSpeed) is the Trainer's own. Loss per pair:

    -log sigmoid(r_w - r_l - margin) + c * (r_w + r_l)^2      (averaged over the batch)
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from rlhf_gym.reward_models.encoding import PairwiseCollator
from rlhf_gym.reward_models.model import reward_forward
from torch import nn
from transformers import EvalPrediction, Trainer, TrainingArguments


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

    learning_rate: float = field(default=1e-3, metadata={"help": "peak AdamW learning rate"})
    epochs: float = field(default=2.0, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(default=32, metadata={"help": "pairs per optimiser step"})
    lr_scheduler: Literal["linear", "cosine"] = field(
        default="cosine", metadata={"help": "learning-rate decay after warmup"}
    )
    warmup_ratio: float = field(
        default=0.05, metadata={"help": "fraction of steps spent warming up"}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    center_coef: float = field(
        default=0.01, metadata={"help": "c in c*mean((r_w+r_l)^2); 0 disables"}
    )
    seed: int = field(default=0, metadata={"help": "seed of head init, shuffling and split"})
    logging_steps: int = field(
        default=20, metadata={"help": "log train loss every this many steps"}
    )
    print_logs: bool = field(
        default=True, metadata={"help": "print the Trainer's loss and eval dicts to stdout"}
    )


def training_arguments(
    config: RewardTrainingConfig, output_dir: str | None = None
) -> TrainingArguments:
    """Translate our config into ``TrainingArguments`` (no checkpoints, no external loggers)."""
    return TrainingArguments(
        output_dir=output_dir or tempfile.mkdtemp(prefix="rlhf_gym_rm_"),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
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
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def train_reward_network(
    model: nn.Module,
    pad_token_id: int,
    train_rows: Sequence[dict[str, Any]],
    eval_rows: Sequence[dict[str, Any]],
    config: RewardTrainingConfig,
    output_dir: str | None = None,
) -> dict[str, float]:
    """Train ``model`` in place on encoded pairs; return the final held-out metrics."""
    trainer = RewardTrainer(
        model=model,
        args=training_arguments(config, output_dir),
        train_dataset=list(train_rows),
        eval_dataset=list(eval_rows),
        data_collator=PairwiseCollator(pad_token_id),
        compute_metrics=pair_accuracy,
        center_coef=config.center_coef,
    )
    # The Trainer prints its log dicts on stdout and its progress bars on stderr: a quiet run
    # (the demo) keeps the bars and drops the dicts; the metrics are returned either way.
    console = (contextlib.nullcontext() if config.print_logs
               else contextlib.redirect_stdout(io.StringIO()))
    with console:
        trainer.train()
        model.eval()
        return trainer.evaluate()

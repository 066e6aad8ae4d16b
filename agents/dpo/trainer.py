"""DPO on top of ``transformers.Trainer``, as the reward models' ``RewardTrainer`` is.

:class:`DPOTrainer` overrides ``compute_loss`` and ``prediction_step`` (and ``log``, to add the
``dpo/`` metrics averaged since the last log); AdamW, the schedule, seeding, progress bars and
multi-GPU through accelerate are the Trainer's own. Batches come from
:class:`~rlhf_gym.agents.dpo.data.DPOCollator` and carry the reference's log-probs, computed once
before training: no reference model is held or run while the policy trains.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from rlhf_gym.agents.dpo.logprobs import sequence_logprobs
from rlhf_gym.agents.dpo.loss import dpo_loss, implicit_reward_metrics
from torch import nn
from transformers import EvalPrediction, Trainer


def held_out_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """``dpo/`` metrics of the held-out pairs from their ``(N, 2)`` implicit rewards."""
    rewards = torch.as_tensor(np.asarray(prediction.predictions))
    return implicit_reward_metrics(rewards[:, 0], rewards[:, 1])


class DPOTrainer(Trainer):
    """A ``Trainer`` for DPO batches (chosen rows first, reference log-probs included)."""

    def __init__(self, *args: Any, beta: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beta = beta
        self._logged: dict[str, list[float]] = defaultdict(list)

    def _loss(
        self, model: nn.Module, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        """(loss, batch metrics, ``(B, 2)`` implicit rewards) of one batch."""
        lp = sequence_logprobs(model, inputs["input_ids"], inputs["attention_mask"],
                               inputs["completion_mask"])  # fmt: skip
        half = inputs["ref_chosen"].shape[0]
        ref_chosen, ref_rejected = inputs["ref_chosen"], inputs["ref_rejected"]
        loss, metrics = dpo_loss(lp[:half], lp[half:], ref_chosen, ref_rejected, self.beta)
        rewards = self.beta * torch.stack([lp[:half] - ref_chosen, lp[half:] - ref_rejected], 1)
        return loss, metrics, rewards.detach()

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The DPO loss (a per-batch mean); its ``dpo/`` metrics wait for the next log."""
        loss, metrics, rewards = self._loss(model, inputs)
        for key, value in metrics.items():
            self._logged[key].append(value)
        return (loss, {"rewards": rewards}) if return_outputs else loss

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The loss and the ``(B, 2)`` implicit rewards (chosen, rejected) for the metrics."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss, _, rewards = self._loss(model, inputs)
        if prediction_loss_only:
            return loss.detach(), None, None
        return loss.detach(), rewards, torch.zeros_like(rewards[:, 0])

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the training batches' ``dpo/`` means since the last log to a training log."""
        if "loss" in logs and self._logged:
            logs = {**logs, **{k: float(np.mean(v)) for k, v in self._logged.items()}}
            self._logged.clear()
        super().log(logs, start_time)



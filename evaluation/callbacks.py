"""Held-out evaluation during training, as a stable-baselines3 callback.

:class:`HeldOutEvalCallback` measures the policy on held-out prompts before training and after
every update (an update ends when the next rollout starts, or when training ends): it samples
with :func:`~rlhf_gym.evaluation.held_out.evaluate_policy` from its own seeded generator, so
training's random streams are untouched, and scores the samples with the proxy reward, the
gold utility when one is known, and the KL to the reference. One record per iteration goes to
``records`` (the report's history keys, docs/metrics.md), to SB3's logger under ``eval/``
(written out at once, with the latest update's ``train/`` metrics: TensorBoard, CSV or stdout,
as the logger is configured) and to ``log`` as one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from rlhf_gym.agents.common.callbacks import IterationCallback
from rlhf_gym.evaluation.held_out import EvalResult, evaluate_policy
from rlhf_gym.evaluation.metrics import distinct_n

#: The agent's training metrics copied into each record (from ``model.last_metrics``).
TRAIN_METRICS = (
    "objective/kl",
    "objective/scores",
    "objective/kl_coef",
    "objective/entropy",
    "policy/approxkl",
    "policy/clipfrac",
    "loss/value",
    "val/ratio",
    "time/rollout_s",
    "time/update_s",
)
SHOWN = ("proxy", "gold", "kl", "kl_coef", "response_length", "seconds")


def history_row(result: EvalResult) -> dict[str, float]:
    """The report's per-iteration keys from one held-out evaluation."""
    row = {
        "proxy": result.reward_mean,
        "kl": float(result.kl_mean or 0.0),
        "response_length": float(np.mean(result.num_tokens)),
        "distinct_1": distinct_n(result.completions, 1),
        "distinct_2": distinct_n(result.completions, 2),
    }
    if result.gold is not None:
        row.update(gold=float(np.mean(result.gold)), gold_std=float(np.std(result.gold)))
    return row


class HeldOutEvalCallback(IterationCallback):
    """Evaluate an LM agent's policy on held-out prompts after every update.

    Args:
        prompts: held-out prompts.
        reward: the proxy reward source (what the agent optimises).
        reference: the reference model the KL is measured against.
        tokenizer: the policy's tokenizer.
        gold: an optional trusted reward source (the toy world's gold utility).
        samples_per_prompt: completions sampled per prompt at each evaluation.
        max_new_tokens: the sampling budget (the env's).
        temperature: the sampling temperature (the env's).
        seed: evaluation ``i`` samples with seed ``seed + i``.
        device: where the evaluation runs.
        log: called with one formatted line per evaluation.
    """

    main_process_only = True  # one evaluation per job: rank 0 samples, scores and logs

    def __init__(
        self,
        prompts: Sequence[str],
        reward: Any,
        *,
        reference: Any,
        tokenizer: Any,
        gold: Any = None,
        samples_per_prompt: int = 32,
        max_new_tokens: int = 48,
        temperature: float = 1.0,
        seed: int = 10_000,
        device: str | torch.device = "auto",
        log: Callable[[str], None] = print,
    ) -> None:
        super().__init__()
        self.prompts, self.reward, self.gold = list(prompts), reward, gold
        self.reference, self.tokenizer = reference, tokenizer
        self.samples_per_prompt, self.max_new_tokens = samples_per_prompt, max_new_tokens
        self.temperature, self.seed, self.device, self.log = temperature, seed, device, log
        self.records: list[dict[str, Any]] = []
        self._train_seconds = 0.0
        self._clock = 0.0

    def start_at(self, iteration: int, records: Sequence[dict[str, Any]] = ()) -> None:
        """Continue a resumed run: its records so far and their training time."""
        super().start_at(iteration)
        self.records = [dict(row) for row in records]
        self._train_seconds = float(self.records[-1].get("seconds", 0.0)) if self.records else 0.0
        self._clock = time.perf_counter()

    def on_iteration(self, iteration: int) -> None:
        """Measure the current policy and append one record."""
        if self.records:
            self._train_seconds += time.perf_counter() - self._clock
        step = iteration
        result = evaluate_policy(
            self.model.policy.model, self.tokenizer, self.prompts, self.reward, gold=self.gold,
            reference=self.reference, num_samples_per_prompt=self.samples_per_prompt,
            max_new_tokens=self.max_new_tokens, temperature=self.temperature,
            seed=self.seed + step, device=self.device,
        )
        metrics = self.model.last_metrics if step else {}
        # the agent's count, not the callback's copy: a group round adds its unused budget after
        # its last step, so the copy would lag behind PPO's for the same work
        row: dict[str, Any] = {
            "step": step,
            "timesteps": self.model.num_timesteps,
            "seconds": round(self._train_seconds, 2),
            "kl_coef": self.model.kl_ctl.value,
            **history_row(result),
            **({k: metrics.get(k, np.nan) for k in TRAIN_METRICS} if step else {}),
        }
        self.records.append(row)
        for key in ("proxy", "gold", "gold_std", "kl", "response_length", "distinct_2"):
            if key in row:
                self.logger.record(f"eval/{key}", row[key])
        self.logger.dump(step=self.model.num_timesteps)  # every iteration's row, as it happens
        self.log(f"iteration {step}: " + ", ".join(
            f"{k}={row[k]:.3g}" for k in SHOWN if isinstance(row.get(k), float)
        ))
        self._clock = time.perf_counter()

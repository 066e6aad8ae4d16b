"""Independent computation of an episode's return: one teacher-forced forward per model."""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedModel


@torch.no_grad()
def teacher_forced_logprobs(
    model: PreTrainedModel, prompt_ids: list[int], actions: list[int], temperature: float
) -> np.ndarray:
    """log π(a_t | prompt, a_<t) for every action, from one full forward."""
    ids = torch.tensor([prompt_ids + actions])
    logits = model(input_ids=ids).logits[0].double() / temperature
    logp = torch.log_softmax(logits, dim=-1)
    positions = torch.arange(len(prompt_ids) - 1, len(prompt_ids) + len(actions) - 1)
    return logp[positions, torch.tensor(actions)].numpy()


def expected_return(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    prompt_ids: list[int],
    actions: list[int],
    score: float,
    beta: float,
    temperature: float = 1.0,
    estimator: str = "k1",
) -> float:
    """r_φ(x, y) − β Σ_t kl_t, computed without the env."""
    lp = teacher_forced_logprobs(policy, prompt_ids, actions, temperature)
    lr = teacher_forced_logprobs(reference, prompt_ids, actions, temperature)
    if estimator == "k1":
        kl = lp - lr
    else:
        log_rho = lr - lp
        kl = np.exp(log_rho) - 1 - log_rho
    return float(score - beta * kl.sum())

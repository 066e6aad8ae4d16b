"""Sampling completions and scoring them with teacher-forced log-probs.

Sampling is HF ``generate`` with pure sampling (``do_sample=True, top_k=0, top_p=1``), the
setting that makes the sampled distribution the policy itself, so its KL to a reference is the
KL the objective penalises (docs/objective.md). Prompts are left-padded; a completion stops at the
first EOS, and its text is the decode of the tokens before that EOS.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from rlhf_gym.lm.positions import position_ids_from_mask
from transformers import GenerationConfig


@dataclass
class SampledBatch:
    """Sampled sequences and where their completions are.

    Attributes:
        sequences: ``(B, P + T)`` token ids: left-padded prompt, then the generated tokens.
        attention_mask: ``(B, P + T)``: 1 on real prompt tokens and on completion tokens up to
            and including the first EOS, 0 on padding and on whatever follows the EOS.
        prompt_length: P, the padded prompt width.
        completions: the decoded completion texts (tokens before the first EOS).
        ended: whether each completion emitted an EOS within the budget.
    """

    sequences: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int
    completions: list[str]
    ended: list[bool]

    @property
    def completion_mask(self) -> torch.Tensor:
        """``(B, T)`` mask of the sampled completion tokens (EOS included)."""
        return self.attention_mask[:, self.prompt_length :]


def _eos_ids(tokenizer: Any, model: torch.nn.Module) -> list[int]:
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else None
    if eos is None:
        eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        raise ValueError("the tokenizer has no eos_token_id; sampling needs one to stop.")
    return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]


@torch.no_grad()
def sample_batch(
    policy: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
) -> SampledBatch:
    """Sample one completion per prompt with pure sampling (uses the torch global RNG)."""
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "the tokenizer has no pad token; set one that differs from EOS "
            "(e.g. tokenizer.add_special_tokens({'pad_token': '<pad>'}))."
        )
    device = next(policy.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True).to(device)
    finally:
        tokenizer.padding_side = side
    eos = _eos_ids(tokenizer, policy)
    config = GenerationConfig(
        do_sample=True, top_k=0, top_p=1.0, temperature=temperature,
        max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
    )
    sequences = policy.generate(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], generation_config=config
    )
    prompt_length = enc["input_ids"].shape[1]
    generated = sequences[:, prompt_length:]
    is_eos = torch.isin(generated, torch.tensor(eos, device=device))
    # 1 up to and including the first EOS: positions whose preceding tokens hold no EOS.
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    completion_mask = (eos_before == 0).long()
    texts, ended = [], []
    for row, mask in zip(generated.tolist(), is_eos.tolist(), strict=True):
        stop = mask.index(True) if True in mask else len(row)
        texts.append(tokenizer.decode(row[:stop], skip_special_tokens=True).strip())
        ended.append(stop < len(row))
    return SampledBatch(
        sequences=sequences,
        attention_mask=torch.cat([enc["attention_mask"], completion_mask], dim=1),
        prompt_length=prompt_length,
        completions=texts,
        ended=ended,
    )


@torch.no_grad()
def completion_logprobs(
    model: torch.nn.Module, batch: SampledBatch, temperature: float = 1.0
) -> torch.Tensor:
    """Per-token log-probs of the sampled completion tokens, with one teacher-forced forward.

    Logits are divided by ``temperature`` before the log-softmax (docs/objective.md), positions are
    counted from each row's first real token (as ``generate`` does with left padding), and
    tokens outside :attr:`SampledBatch.completion_mask` get 0.

    Returns:
        ``(B, T)`` float32 log-probs aligned with ``batch.sequences[:, P:]``.
    """
    device = next(model.parameters()).device
    ids = batch.sequences.to(device)
    mask = batch.attention_mask.to(device)
    positions = position_ids_from_mask(mask)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    p = batch.prompt_length
    logits = logits[:, p - 1 : -1].float() / temperature  # logits that predicted tokens p..end
    logprobs = torch.log_softmax(logits, dim=-1)
    token_lp = logprobs.gather(-1, ids[:, p:].unsqueeze(-1)).squeeze(-1)
    return token_lp * batch.completion_mask.to(device)


@contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG inside the block and restore the caller's RNG state afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield

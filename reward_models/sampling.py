"""Completions sampled from a causal LM (the SFT policy), for normalising and probing an RM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from rlhf_gym.reward_models.encoding import encode_text
from torch import nn


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 512,
    seed: int = 0,
) -> list[str]:
    """Pure sampling (temperature 1, no top-k/top-p), one completion per prompt, cut at EOS.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer (pad distinct from eos).
        prompts: prompt texts, tokenized without special tokens (the RM's layout).
        max_new_tokens: longest completion.
        batch_size: prompts per ``generate`` call.
        seed: seeds torch's generator, so the same call gives the same text on CPU.
    """
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = [encode_text(tokenizer, p) for p in prompts[start : start + batch_size]]
        width = max(len(ids) for ids in batch)
        ids = torch.tensor([[pad] * (width - len(b)) + b for b in batch], device=device)
        mask = (
            torch.arange(width, device=device)[None]
            >= torch.tensor([width - len(b) for b in batch], device=device)[:, None]
        ).long()
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            top_k=0,
            top_p=1.0,
            temperature=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=eos,
        )
        for row in out[:, width:].tolist():
            row = row[: row.index(eos)] if eos in row else row
            texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts

"""Completions sampled from a causal LM (the SFT policy), for normalising and probing an RM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from rlhf_gym.reward_models.encoding import encode_text
from rlhf_gym.sampling import sample_ids
from torch import nn


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
        batch_size: prompts sampled together.
        seed: seeds a torch Generator of its own, so the same call gives the same text on CPU.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    eos = tokenizer.eos_token_id
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = [encode_text(tokenizer, p) for p in prompts[start : start + batch_size]]
        rows = sample_ids(model, batch, eos_id=eos, pad_id=tokenizer.pad_token_id,
                          max_new_tokens=max_new_tokens, generator=generator)
        texts.extend(
            tokenizer.decode(row[: row.index(eos)] if eos in row else row,
                             skip_special_tokens=True)
            for row in rows
        )
    return texts

"""Pure sampling from a causal LM that drops finished rows, shared by the toy build and the RM.

``model.generate`` keeps computing every row of a batch until the last row stops, so one long
sample makes a whole batch run to ``max_new_tokens``. Here a row that emits EOS leaves the batch
and its KV cache (``Cache.batch_select_indices``), so the cost follows the samples' real lengths:
on the toy world, whose completions average 13 tokens under a 48-token budget, that is about a
third of ``generate``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache, PreTrainedModel


def _left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def sample_ids(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    *,
    eos_id: int,
    pad_id: int,
    max_new_tokens: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> list[list[int]]:
    """Sample one completion per prompt (temperature ``temperature``, no top-k or top-p).

    Args:
        model: a causal LM in eval mode.
        prompts: token ids per prompt (non-empty), without padding.
        eos_id: the end-of-sequence id; a row stops after emitting it.
        pad_id: the id used to left-pad prompts (masked out).
        max_new_tokens: the longest completion.
        generator: the torch Generator every draw comes from (on the model's device).
        temperature: logits are divided by it.

    Returns:
        The completion ids per prompt, ending with ``eos_id`` unless the budget ran out.
    """
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token to condition on.")
    device = next(model.parameters()).device
    ids, mask = _left_pad(prompts, pad_id, device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                cache=DynamicCache(config=model.config), use_cache=True)
    cache, logits = out.cache, out.logits[:, -1, :]
    rows = torch.arange(len(prompts), device=device)  # which prompt each live row samples for
    next_pos = positions[:, -1] + 1
    completions: list[list[int]] = [[] for _ in prompts]
    for step in range(max_new_tokens):
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
        for row, token in zip(rows.tolist(), tokens.tolist(), strict=True):
            completions[row].append(token)
        live = (tokens != eos_id).nonzero()[:, 0]
        if live.numel() == 0 or step == max_new_tokens - 1:
            break
        if live.numel() < rows.numel():
            cache.batch_select_indices(live)
            rows, tokens, mask, next_pos = rows[live], tokens[live], mask[live], next_pos[live]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                    cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1, :]
        next_pos = next_pos + 1
    return completions

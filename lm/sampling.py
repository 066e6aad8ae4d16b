"""Pure sampling from a causal LM that drops finished rows, shared by the toy build and the RM.

:func:`sample_ids` works on token ids; :func:`sample_completions` is the text-in, text-out wrapper
that the toy build and reward-model normalisation both call.

``model.generate`` keeps computing every row of a batch until the last row stops, so one long
sample makes a whole batch run to ``max_new_tokens``. Here a row that emits EOS leaves the batch
and its KV cache (``Cache.batch_select_indices``), so the cost follows the samples' real lengths:
on the toy world, whose completions average 13 tokens under a 48-token budget, that is about a
third of ``generate``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from rlhf_gym.lm.positions import position_ids_from_mask
from tqdm.auto import tqdm
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
    positions = position_ids_from_mask(mask)
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


def sample_completions(
    model: PreTrainedModel,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 512,
    seed: int = 0,
    progress: bool = False,
    desc: str = "sampling",
) -> list[str]:
    """Pure sampling (temperature 1, no top-k/top-p), one completion per prompt, cut at EOS.

    Args:
        model: a causal LM in eval mode.
        tokenizer: its tokenizer (pad distinct from eos); prompts are tokenized without special
            tokens, the reward model's layout.
        prompts: prompt texts.
        max_new_tokens: longest completion; one that never emitted EOS is returned as cut.
        batch_size: prompts sampled together.
        seed: seeds a torch Generator of its own, so the same call gives the same text on CPU
            and the global torch random state is not touched.
        progress: show a tqdm bar over batches, labelled ``desc``.
        desc: the bar's label.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    eos = tokenizer.eos_token_id
    texts: list[str] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, disable=not progress):
        batch = tokenizer(list(prompts[start : start + batch_size]), add_special_tokens=False)
        rows = sample_ids(model, batch["input_ids"], eos_id=eos, pad_id=tokenizer.pad_token_id,
                          max_new_tokens=max_new_tokens, generator=generator)
        texts.extend(
            tokenizer.decode(row[: row.index(eos)] if eos in row else row,
                             skip_special_tokens=True)
            for row in rows
        )
    return texts

"""The one sampler: pure sampling from a causal LM that drops finished rows.

:func:`sample_ids` works on token ids. On top of it, :func:`sample_completions` returns texts
(the toy build, reward-model normalisation, length debiasing) and :func:`sample_batch` returns
the padded sequences that :func:`completion_logprobs` scores teacher-forced (held-out
evaluation and its KL). Every caller tokenizes prompts with
:func:`~rlhf_gym.lm.encoding.encode_prompts`, the env's encoding, so all of them condition on the
same ids, and every completion ends at the first of the tokenizer's and the generation config's
stop ids (:func:`~rlhf_gym.lm.encoding.stop_ids`).

Sampling is pure (temperature only, no top-k or top-p): the sampled distribution is then the
policy itself, so its KL to a reference is the KL the objective penalises (docs/objective.md).
``model.generate`` keeps computing every row of a batch until the last row stops, so one long
sample makes a whole batch run to ``max_new_tokens``. Here a row that emits EOS leaves the batch
and its KV cache (``Cache.batch_select_indices``), so the cost follows the samples' real lengths:
on the toy world, whose completions average 13 tokens under a 48-token budget, that is about a
third of ``generate``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from rlhf_gym.lm.encoding import encode_prompts, first_stop, stop_ids
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
    eos_id: int | Sequence[int],
    pad_id: int,
    max_new_tokens: int,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> list[list[int]]:
    """Sample one completion per prompt (temperature ``temperature``, no top-k or top-p).

    Args:
        model: a causal LM in eval mode.
        prompts: token ids per prompt (non-empty), without padding.
        eos_id: the end-of-sequence id (or ids); a row stops after emitting one.
        pad_id: the id used to left-pad prompts (masked out).
        max_new_tokens: the longest completion.
        generator: the torch Generator every draw comes from (on the model's device).
        temperature: logits are divided by it.

    Returns:
        The completion ids per prompt, ending with an EOS id unless the budget ran out.
    """
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token to condition on.")
    device = next(model.parameters()).device
    stops = torch.tensor([eos_id] if isinstance(eos_id, int) else list(eos_id), device=device)
    ids, mask = _left_pad(prompts, pad_id, device)
    positions = position_ids_from_mask(mask)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        cache=DynamicCache(config=model.config),
        use_cache=True,
    )
    cache, logits = out.cache, out.logits[:, -1, :]
    rows = torch.arange(len(prompts), device=device)  # which prompt each live row samples for
    next_pos = positions[:, -1] + 1
    completions: list[list[int]] = [[] for _ in prompts]
    for step in range(max_new_tokens):
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
        for row, token in zip(rows.tolist(), tokens.tolist(), strict=True):
            completions[row].append(token)
        live = (~torch.isin(tokens, stops)).nonzero()[:, 0]
        if live.numel() == 0 or step == max_new_tokens - 1:
            break
        if live.numel() < rows.numel():
            cache.batch_select_indices(live)
            rows, tokens, mask, next_pos = rows[live], tokens[live], mask[live], next_pos[live]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            cache=cache,
            use_cache=True,
        )
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
        tokenizer: its tokenizer (pad distinct from eos); prompts go through
            :func:`~rlhf_gym.lm.encoding.encode_prompts`.
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
    stops = stop_ids(tokenizer, model)
    texts: list[str] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, disable=not progress):
        batch = encode_prompts(tokenizer, prompts[start : start + batch_size])
        rows = sample_ids(
            model,
            batch,
            eos_id=stops,
            pad_id=tokenizer.pad_token_id,
            max_new_tokens=max_new_tokens,
            generator=generator,
        )
        texts.extend(_decode(tokenizer, row[: first_stop(row, stops)]) for row in rows)
    return texts


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True).strip()


@dataclass
class SampledBatch:
    """Sampled sequences and where their completions are.

    Attributes:
        sequences: ``(B, P + T)`` token ids: left-padded prompt, then the sampled tokens,
            padded after each row's EOS.
        attention_mask: ``(B, P + T)``: 1 on real prompt tokens and on completion tokens up to
            and including the first EOS, 0 elsewhere.
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


def sample_batch(
    model: PreTrainedModel,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator,
) -> SampledBatch:
    """Sample one completion per prompt and lay the batch out for teacher-forced scoring."""
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "the tokenizer has no pad token; set one that differs from EOS "
            "(e.g. tokenizer.add_special_tokens({'pad_token': '<pad>'}))."
        )
    device = next(model.parameters()).device
    prompt_ids = encode_prompts(tokenizer, prompts)
    stops = stop_ids(tokenizer, model)
    rows = sample_ids(
        model,
        prompt_ids,
        eos_id=stops,
        pad_id=tokenizer.pad_token_id,
        max_new_tokens=max_new_tokens,
        generator=generator,
        temperature=temperature,
    )
    ids, prompt_mask = _left_pad(prompt_ids, tokenizer.pad_token_id, device)
    width = max(len(row) for row in rows)
    completion = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        completion[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        completion_mask[i, : len(row)] = 1
    cuts = [(row, first_stop(row, stops)) for row in rows]
    return SampledBatch(
        sequences=torch.cat([ids, completion.to(device)], dim=1),
        attention_mask=torch.cat([prompt_mask, completion_mask.to(device)], dim=1),
        prompt_length=ids.shape[1],
        completions=[_decode(tokenizer, row[:stop]) for row, stop in cuts],
        ended=[stop < len(row) for row, stop in cuts],
    )


@torch.no_grad()
def completion_logprobs(
    model: torch.nn.Module, batch: SampledBatch, temperature: float = 1.0
) -> torch.Tensor:
    """Per-token log-probs of the sampled completion tokens, with one teacher-forced forward.

    Logits are divided by ``temperature`` before the log-softmax (docs/objective.md), positions
    are counted from each row's first real token (as the sampler counts them), and tokens outside
    :attr:`SampledBatch.completion_mask` get 0.

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

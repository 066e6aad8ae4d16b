"""The toy SFT policy: a tiny GPT-2 trained on world samples, and batched pure sampling from it.

The model is a plain ``GPT2LMHeadModel`` with all dropout off (policy, reference and reward
models must be deterministic). Each training sequence is a corpus record
``prompt + completion + <eos> + rating`` (:mod:`rlhf_gym.toy.rating`); the loss is taken on the
completion, the EOS and the rating (the prompt is given, never generated). Sampling stops at the
EOS, so the policy never writes a rating, but predicting one makes its hidden state at the EOS
track how good the review is, the feature a pretrained LM hands a real reward model.
Training data is drawn fresh from the world's seeded sampler over *all* items, so the policy can
write about held-out items too. The model is saved with ``save_pretrained`` (safetensors), so plain
``AutoModelForCausalLM.from_pretrained(dir)`` loads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from rlhf_gym.lm.sampling import sample_completions as shared_sample_completions
from rlhf_gym.toy.grammar import ToyWorld
from rlhf_gym.toy.rating import site_rating
from rlhf_gym.toy.sft_config import SFTConfig
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

BUCKET_ROUNDS = 8


def make_model(config: SFTConfig, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    """A fresh GPT-2 with dropout off and the tokenizer's special token ids."""
    gpt_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu",
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(gpt_config)


def _collate(
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    rating_ids: list[list[int]],
) -> dict[str, torch.Tensor]:
    """A right-padded batch with labels on the completion, the EOS and the rating after it."""
    eos = tokenizer.eos_token_id
    rows = [
        p + c + [eos] + r for p, c, r in zip(prompt_ids, completion_ids, rating_ids, strict=True)
    ]
    n, width = len(rows), max(map(len, rows))
    input_ids = torch.full((n, width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((n, width), -100, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, (row, p) in enumerate(zip(rows, prompt_ids, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        labels[i, len(p) : len(row)] = torch.tensor(row[len(p) :])
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _batches(
    world: ToyWorld, tokenizer: PreTrainedTokenizerBase, config: SFTConfig, rng: np.random.Generator
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless training batches of fresh samples, bucketed by length to cut padding.

    Each round samples ``BUCKET_ROUNDS`` batches' worth of sequences, sorts them by length,
    cuts them into batches and yields those in a random order.
    """
    while True:
        prompts, completions = world.sample(config.batch_size * BUCKET_ROUNDS, rng)
        ratings = [site_rating(p, c, rng) for p, c in zip(prompts, completions, strict=True)]
        prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completions, add_special_tokens=False)["input_ids"]
        rating_ids = tokenizer(ratings, add_special_tokens=False)["input_ids"]
        lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
        order = np.argsort(lengths, kind="stable")
        chunks = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        for k in rng.permutation(len(chunks)):
            idx = chunks[k]
            batch_prompts = [prompt_ids[i] for i in idx]
            completions_ = [completion_ids[i] for i in idx]
            yield _collate(tokenizer, batch_prompts, completions_, [rating_ids[i] for i in idx])


def train_sft(
    world: ToyWorld,
    tokenizer: PreTrainedTokenizerBase,
    config: SFTConfig,
    *,
    seed: int = 0,
    progress: bool = True,
) -> tuple[GPT2LMHeadModel, list[float]]:
    """Train the SFT policy on fresh world samples.

    Returns:
        The trained model (in eval mode) and the per-step training losses.
    """
    rng = np.random.default_rng([seed, 1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_model(config, tokenizer)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.98), fused=True)

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * done))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses: list[float] = []
    batches = _batches(world, tokenizer, config, rng)
    bar = tqdm(range(config.steps), desc="toy: SFT training", disable=not progress)
    for _ in bar:
        loss = model(**next(batches)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return model, losses


def sample_completions(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    *,
    seed: int = 0,
    batch_size: int = 1000,
    max_new_tokens: int = 48,
    progress: bool = True,
) -> list[str]:
    """Pure sampling with the toy build's defaults: batches of 1000 and a progress bar.

    See :func:`rlhf_gym.lm.sampling.sample_completions`; one completion that never emitted EOS is
    returned as cut (and is then normally not well formed).
    """
    return shared_sample_completions(
        model, tokenizer, prompts, seed=seed, batch_size=batch_size,
        max_new_tokens=max_new_tokens, progress=progress, desc="toy: sampling",
    )

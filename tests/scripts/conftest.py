"""Fixtures for the script smoke tests: a word tokenizer and tiny GPT-2 models saved to disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast
from word_lm import tiny_lm, word_tokenizer

WORDS = [
    "review", "of", "the", "a", "phone", ":", "it", "is", "was", "very", "not", ".", "cat",
    "dog", "good", "bad", "great", "awful",
]


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer(WORDS)


def peaked_gpt2(vocab_size: int, seed: int = 0, sharpness: float = 1.0) -> PreTrainedModel:
    """Tiny GPT-2; ``sharpness`` scales the final layer norm, peaking its distributions."""
    model = tiny_lm("gpt2", vocab_size, seed)
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(sharpness)
    return model


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:
    path = tmp_path_factory.mktemp("sft_gpt2")
    tiny_lm("gpt2", len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def make_gpt2(tokenizer) -> Callable[..., PreTrainedModel]:
    """``make_gpt2(seed, sharpness)``: a tiny GPT-2 over the fixture tokenizer's vocabulary."""
    return lambda seed=0, sharpness=1.0: peaked_gpt2(len(tokenizer), seed, sharpness)


@pytest.fixture
def lm_factory() -> Callable[..., PreTrainedModel]:
    """``lm_factory(arch, vocab_size=...)``: a tiny causal LM from config."""
    return lambda arch="gpt2", vocab_size=26, seed=0: tiny_lm(arch, vocab_size, seed)

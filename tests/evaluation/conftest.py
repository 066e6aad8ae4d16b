"""A tiny word-level tokenizer (pad != eos) and tiny GPT-2 models over it, built from config."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

WORDS = [
    "review", "of", "the", "phone", ":", "it", "is", "good", "bad", "great", "awful", "very",
    "not", ".", "cat", "dog",
]


def word_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer: <unk>=0, <eos>=1, <pad>=2, then WORDS."""
    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "<pad>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>", pad_token="<pad>"
    )


def tiny_gpt2(seed: int = 0, sharpness: float = 1.0) -> GPT2LMHeadModel:
    """Random tiny GPT-2; ``sharpness`` scales the final layer norm, peaking its distributions."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(WORDS) + 3, n_embd=32, n_layer=2, n_head=2, n_positions=128,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=1, eos_token_id=1, pad_token_id=2,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(sharpness)
    return model


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer()


@pytest.fixture
def policy() -> GPT2LMHeadModel:
    return tiny_gpt2(seed=0, sharpness=6.0)


@pytest.fixture
def other_model() -> GPT2LMHeadModel:
    return tiny_gpt2(seed=1)


@pytest.fixture
def make_gpt2():
    """The :func:`tiny_gpt2` factory, for tests that need several models."""
    return tiny_gpt2

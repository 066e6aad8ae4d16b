"""Tiny word-level tokenizers and causal LMs built from config and saved to tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

WORDS = [
    "good",
    "bad",
    "great",
    "awful",
    "the",
    "a",
    "cat",
    "dog",
    "is",
    "was",
    "very",
    "not",
    "q",
    "say",
]


def word_tokenizer(pad: bool = True, pad_is_eos: bool = False) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer: <unk>=0, <eos>=1, <pad>=2, then WORDS."""
    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "<pad>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    kwargs = {"unk_token": "<unk>", "eos_token": "<eos>"}
    if pad:
        kwargs["pad_token"] = "<eos>" if pad_is_eos else "<pad>"
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def tiny_lm(arch: str = "gpt2", seed: int = 0) -> torch.nn.Module:
    """A 2-layer causal LM over the word vocabulary."""
    torch.manual_seed(seed)
    common = {"vocab_size": len(WORDS) + 3, "eos_token_id": 1, "bos_token_id": 1, "pad_token_id": 2}
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, **common))
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        **common,
    )
    return LlamaForCausalLM(config)


def save_tiny(path: Path, arch: str = "gpt2") -> Path:
    tiny_lm(arch).save_pretrained(path)
    word_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer()


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("sft_gpt2"))


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("sft_llama"), "llama")


@pytest.fixture(scope="session")
def make_tokenizer():
    """The :func:`word_tokenizer` factory (test modules cannot import conftest)."""
    return word_tokenizer

"""Helpers for env tests: a tiny word-level tokenizer, tiny models built from config, prompts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

WORDS = [
    "review",
    "of",
    "the",
    "phone",
    "lamp",
    "book",
    ":",
    "it",
    "is",
    "a",
    "good",
    "great",
    "bad",
    "awful",
    "fine",
    "nice",
    "very",
    "not",
    "and",
    ".",
    "!",
    "i",
    "love",
    "hate",
]
PROMPTS = ["review of the phone :", "review of the lamp :", "review of the book :", "it is"]
POSITIVE = {"good", "great", "nice", "love"}


def word_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer: <pad>=0, <eos>=1, <unk>=2, then WORDS."""
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


def tiny_gpt2(vocab_size: int, seed: int = 0, n_embd: int = 32) -> GPT2LMHeadModel:
    """A 2-layer GPT-2 with dropout off, random weights from ``seed``."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=n_embd,
        n_layer=2,
        n_head=2,
        n_positions=128,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


def positive_word_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    """+1 when the completion uses a positive word."""
    return np.array([float(any(w in POSITIVE for w in c.split())) for c in completions])


def tiny_causal_lm(arch: str, vocab_size: int, seed: int = 0):
    """The shared ``tests/conftest.py`` builder (gpt2, llama, neox), loaded by path."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("rlhf_gym_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_causal_lm(arch, vocab_size, seed)

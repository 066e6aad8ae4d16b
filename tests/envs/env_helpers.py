"""Helpers for env tests: a tiny word-level tokenizer, tiny models built from config, prompts."""

from __future__ import annotations

import numpy as np
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast
from word_lm import tiny_lm
from word_lm import word_tokenizer as shared_word_tokenizer

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
    return shared_word_tokenizer(WORDS)


def tiny_gpt2(vocab_size: int, seed: int = 0, n_embd: int = 32) -> GPT2LMHeadModel:
    """A 2-layer GPT-2 with dropout off, random weights from ``seed``."""
    return tiny_lm("gpt2", vocab_size, seed, n_embd)


def positive_word_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    """+1 when the completion uses a positive word."""
    return np.array([float(any(w in POSITIVE for w in c.split())) for c in completions])

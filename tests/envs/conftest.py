"""Fixtures for env tests; the helpers live in env_helpers.py (importable from these tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).parent))

from env_helpers import PROMPTS, positive_word_reward, tiny_gpt2, word_tokenizer  # noqa: E402


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer()


@pytest.fixture
def env_kwargs(tokenizer: PreTrainedTokenizerFast) -> dict:
    """Everything TextGenerationEnv needs, with a bound policy so any β works."""
    vocab = len(tokenizer)
    return {
        "tokenizer": tokenizer,
        "reference_model": tiny_gpt2(vocab, seed=0),
        "policy_model": tiny_gpt2(vocab, seed=1),
        "prompts": PROMPTS,
        "reward": positive_word_reward,
        "max_prompt_tokens": 6,
        "max_new_tokens": 5,
        "kl_coef": 0.1,
        "device": "cpu",
    }

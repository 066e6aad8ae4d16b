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


def cached_toy_build() -> bool:
    from rlhf_gym import toy

    root = Path(toy.default_cache_root())
    return any(toy.cache.check(p) is None for p in root.glob("toy-*"))


@pytest.fixture(scope="session")
def toy_kwargs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """No arguments when the default toy build is cached; else a real but tiny build (~10 s)."""
    from rlhf_gym import toy

    if cached_toy_build():
        return {}
    config = toy.SFTConfig(
        n_embd=16, n_layer=1, n_head=1, steps=2, batch_size=8, warmup_steps=1, max_new_tokens=24
    )
    out_dir = str(tmp_path_factory.mktemp("toy"))
    return {"out_dir": out_dir, "build_kwargs": {"num_pairs": 8, "sft_config": config}}

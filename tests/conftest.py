"""Shared fixtures: tiny models built from config, never downloaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

TINY_VOCAB = 50
sys.path.insert(0, str(Path(__file__).parent))  # shared helpers: ``from word_lm import ...``


def tiny_causal_lm(arch: str, vocab_size: int = TINY_VOCAB, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised 2-layer causal LM of the given architecture, dropout off."""
    torch.manual_seed(seed)
    common = {"vocab_size": vocab_size, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2}
    if arch == "gpt2":
        config = GPT2Config(
            n_embd=32, n_layer=2, n_head=2, n_positions=256,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common,
        )
        return GPT2LMHeadModel(config).eval()
    if arch == "llama":
        config = LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=256, **common,
        )
        return LlamaForCausalLM(config).eval()
    if arch == "neox":
        config = GPTNeoXConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=256, **common,
        )
        return GPTNeoXForCausalLM(config).eval()
    raise ValueError(f"unknown tiny architecture {arch!r}")


@pytest.fixture(params=["gpt2", "llama", "neox"])
def tiny_lm(request: pytest.FixtureRequest) -> PreTrainedModel:
    """One tiny model per architecture we promise to support."""
    return tiny_causal_lm(request.param)

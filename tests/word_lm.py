"""A word-level tokenizer and tiny causal LMs built from config, shared by the tests.

Word layout: ``<pad>=0, <eos>=1, <unk>=2``, then the caller's words; :func:`tiny_lm` models use
eos 1 as bos and pad 0 to match. :func:`tiny_causal_lm` is the tokenizer-free variant of the root
fixtures (bos 0, eos 1, pad 2, 256 positions). ``tests/conftest.py`` puts this folder on
``sys.path``, so ``from word_lm import ...`` works from every test folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)


def word_tokenizer(words: Sequence[str]) -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer over ``words``: <pad>=0, <eos>=1, <unk>=2, then the words."""
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", *words])}
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


def tiny_lm(
    arch: str,
    vocab_size: int,
    seed: int = 0,
    n_embd: int = 32,
    *,
    bos_id: int = 1,
    eos_id: int = 1,
    pad_id: int = 0,
    positions: int = 128,
) -> PreTrainedModel:
    """A 2-layer causal LM (``gpt2``, ``llama`` or ``neox``) from config, dropout off, eval mode."""
    torch.manual_seed(seed)
    common = {"vocab_size": vocab_size, "bos_token_id": bos_id, "eos_token_id": eos_id,
              "pad_token_id": pad_id}
    if arch == "gpt2":
        config = GPT2Config(
            n_embd=n_embd, n_layer=2, n_head=2, n_positions=positions,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common,
        )
        return GPT2LMHeadModel(config).eval()
    if arch == "llama":
        config = LlamaConfig(
            hidden_size=n_embd, intermediate_size=2 * n_embd, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=positions,
            **common,
        )
        return LlamaForCausalLM(config).eval()
    if arch == "neox":
        config = GPTNeoXConfig(
            hidden_size=n_embd, intermediate_size=2 * n_embd, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=positions, **common,
        )
        return GPTNeoXForCausalLM(config).eval()
    raise ValueError(f"unknown tiny architecture {arch!r}")


def tiny_causal_lm(arch: str, vocab_size: int = 50, seed: int = 0) -> PreTrainedModel:
    """The root fixtures' model: bos 0, eos 1, pad 2, 256 positions."""
    return tiny_lm(arch, vocab_size, seed, bos_id=0, eos_id=1, pad_id=2, positions=256)


def sliding_config(arch: str, vocab_size: int, window: int = 4, eos_id: int = 1) -> Any:
    """Mistral (every layer slides), Gemma 2 (alternating), Qwen2 (layer 0 full), tiny."""
    from transformers import Gemma2Config, MistralConfig, Qwen2Config

    common = {
        "vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64,
        "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 2,
        "max_position_embeddings": 64, "bos_token_id": eos_id, "eos_token_id": eos_id,
        "pad_token_id": 0, "sliding_window": window,
    }
    if arch == "mistral":
        return MistralConfig(**common)
    if arch == "gemma2":
        return Gemma2Config(**common, head_dim=16)
    return Qwen2Config(**common, use_sliding_window=True, max_window_layers=1)

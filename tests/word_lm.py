"""A word-level tokenizer and tiny causal LMs built from config, shared by the env and agent tests.

Layout: ``<pad>=0, <eos>=1, <unk>=2``, then the caller's words; models use eos 1 as bos and pad 0.
(``tests/conftest.py`` puts this folder on ``sys.path``, so ``from word_lm import ...`` works.)
"""

from __future__ import annotations

from collections.abc import Sequence

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


def tiny_lm(arch: str, vocab_size: int, seed: int = 0, n_embd: int = 32) -> PreTrainedModel:
    """A 2-layer causal LM (``gpt2``, ``llama`` or ``neox``) from config, dropout off, eval mode."""
    torch.manual_seed(seed)
    common = {"vocab_size": vocab_size, "bos_token_id": 1, "eos_token_id": 1, "pad_token_id": 0}
    if arch == "gpt2":
        config = GPT2Config(
            n_embd=n_embd, n_layer=2, n_head=2, n_positions=128,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common,
        )
        return GPT2LMHeadModel(config).eval()
    if arch == "llama":
        config = LlamaConfig(
            hidden_size=n_embd, intermediate_size=2 * n_embd, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128, **common,
        )
        return LlamaForCausalLM(config).eval()
    if arch == "neox":
        config = GPTNeoXConfig(
            hidden_size=n_embd, intermediate_size=2 * n_embd, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=128, **common,
        )
        return GPTNeoXForCausalLM(config).eval()
    raise ValueError(f"unknown tiny architecture {arch!r}")

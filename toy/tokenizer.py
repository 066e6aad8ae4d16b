"""A word-level tokenizer for the toy world, saved as an ordinary Hugging Face tokenizer.

One token per word of :func:`rlhf_gym.toy.lexicon.vocabulary`, split on whitespace, plus three
special tokens: ``<pad>`` (id 0), ``<eos>`` (id 1) and ``<unk>`` (id 2). Pad is distinct from EOS,
so a reward model can find the last real token. There is no BOS token.

``padding_side`` is ``"left"``: batched generation needs prompts aligned on the right. Code that
reads the last real token of a left-padded batch takes position ``-1``; code that needs right
padding sets ``tokenizer.padding_side = "right"`` on its own copy.

Because toy text is lowercase words separated by single spaces, decoding joins tokens with one
space and ``decode(encode(text)) == text`` holds for every text the grammar produces.
"""

from __future__ import annotations

from pathlib import Path

from rlhf_gym.toy import lexicon as lx
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

SPECIAL_TOKENS = (lx.PAD, lx.EOS, lx.UNK)
MODEL_MAX_LENGTH = 128


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the word-level tokenizer (deterministic: the vocabulary is sorted)."""
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *lx.vocabulary()])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=lx.UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=lx.PAD,
        eos_token=lx.EOS,
        unk_token=lx.UNK,
        padding_side="left",
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
    )
    return tokenizer


def save_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Build the tokenizer and ``save_pretrained`` it into ``directory``; return it."""
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load a saved toy tokenizer with plain ``AutoTokenizer.from_pretrained``."""
    return AutoTokenizer.from_pretrained(str(directory))

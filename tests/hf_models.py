"""Tiny stand-ins for the models real users bring, built from config and saved as plain HF folders.

* :func:`save_chat_llama`: a Llama-architecture policy whose tokenizer has a chat template, adds
  BOS to every encoding and whose generation config has two stop ids (``</s>`` and ``<|end|>``).
* :func:`save_bert_reward_model`: a BERT-family encoder reward model (``num_labels=1``) with its
  own WordPiece tokenizer that wraps text in ``[CLS] ... [SEP]``.
* :func:`save_gpt2_reward_model`: a GPT-2 ``AutoModelForSequenceClassification`` with no
  rlhf_gym metadata and a word tokenizer whose ids differ from the policy's.

All share one small English vocabulary (:data:`WORDS`) so text moves between them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    GenerationConfig,
    GPT2Config,
    GPT2ForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "bird",
    "is",
    "was",
    "very",
    "not",
    "good",
    "bad",
    "great",
    "awful",
    "nice",
    "movie",
    "film",
    "book",
    "i",
    "you",
    "it",
    "like",
    "love",
    "hate",
    "this",
    "that",
    "and",
    "but",
    "so",
    "say",
    "tell",
    "me",
    "about",
    "why",
    "how",
    "what",
]

CHAT_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"]

#: Renders ``<s>`` once, then ``<|role|> content <|end|>`` per message.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def chat_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer that prepends ``<s>`` to every encoding and has a chat template."""
    vocab = {w: i for i, w in enumerate([*CHAT_SPECIALS, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|end|>"],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_chat_llama(path: Path, seed: int = 0) -> Path:
    """A 2-layer Llama policy and chat tokenizer that stops on ``</s>`` or ``<|end|>``."""
    tokenizer = chat_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        bos_token_id=ids("<s>"),
        eos_token_id=ids("</s>"),
        pad_token_id=ids("<pad>"),
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids("<s>"),
        eos_token_id=[ids("</s>"), ids("<|end|>")],
        pad_token_id=ids("<pad>"),
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


def save_bert_reward_model(path: Path, seed: int = 0) -> Path:
    """A 2-layer BERT sequence classifier (one label) with its own WordPiece tokenizer."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ly"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertForSequenceClassification(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_gpt2_reward_model(path: Path, seed: int = 0) -> Path:
    """A GPT-2 sequence classifier saved by plain transformers: no rlhf_gym metadata.

    Its word tokenizer lists the words in reverse order, so its ids differ from the chat
    tokenizer's: feeding it the policy's ids would score the wrong words.
    """
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", *reversed(WORDS)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        num_labels=1,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    GPT2ForSequenceClassification(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)

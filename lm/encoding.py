"""The one encoding of text into a policy's (or a decoder reward model's) token ids.

Every place that turns a prompt or a completion into ids goes through here: the env's prompts,
the sampler, reward-model training pairs and reward-model scoring. So a reward model is trained
on exactly the ids it later scores, and both are the ids the policy conditions on.

* A **prompt** gets the tokenizer's leading special tokens (BOS for Llama-style tokenizers), as
  ``tokenizer(text)`` adds them, but never twice: chat-templated text already starts with the
  BOS text (``"<s>..."``), so nothing is added to it. Trailing specials (EOS, SEP) are never
  added: the completion follows the prompt.
* A **completion** gets no special tokens; what follows its first stop id (:func:`stop_ids`:
  the tokenizer's EOS and every ``generation_config.eos_token_id``) is not content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def leading_special_ids(full: Sequence[int], plain: Sequence[int], specials: set[int]) -> list[int]:
    """The ids ``tokenizer(text)`` (``full``) puts before the text's own ids (``plain``).

    Where ``plain`` does not appear whole in ``full`` (an empty text, or a tokenizer whose
    special tokens change how the text splits), the leading run of ``specials`` counts.
    """
    full, plain = list(full), list(plain)
    if plain:
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return full[:start]
    lead = 0
    while lead < len(full) and full[lead] in specials:
        lead += 1
    return full[:lead]


def encode_prompts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """:func:`encode_prompt` for a batch (two batched tokenizer calls)."""
    texts = list(texts)
    if not texts:
        return []
    full = tokenizer(texts)["input_ids"]
    plain = tokenizer(texts, add_special_tokens=False)["input_ids"]
    trailing = {
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        getattr(tokenizer, "sep_token_id", None),
    }
    specials = set(tokenizer.all_special_ids) - trailing
    out = []
    for with_specials, ids in zip(full, plain, strict=True):
        lead = leading_special_ids(with_specials, ids, specials)
        already_there = list(ids[: len(lead)]) == lead  # chat-templated text starts with "<s>"
        out.append([int(i) for i in (ids if already_there else [*lead, *ids])])
    return out


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Prompt ids: the tokenizer's leading special tokens (never doubled), then the text's."""
    return encode_prompts(tokenizer, [text])[0]


def encode_completion(tokenizer: Any, text: str) -> list[int]:
    """Completion ids: the text's own tokens, no special tokens."""
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def stop_ids(tokenizer: Any, model_or_generation_config: Any = None) -> list[int]:
    """The ids that end a completion, tokenizer's EOS first, without repeats.

    Args:
        tokenizer: its ``eos_token_id`` stops a completion.
        model_or_generation_config: a model (its ``generation_config``) or a
            ``GenerationConfig``; every id of its ``eos_token_id`` (an int or a list, as chat
            models have: ``</s>`` and ``<|end|>``) stops a completion too.

    Raises:
        ValueError: when neither names a stop id.
    """
    config = getattr(model_or_generation_config, "generation_config", model_or_generation_config)
    extra = getattr(config, "eos_token_id", None)
    extra = [] if extra is None else [extra] if isinstance(extra, int) else list(extra)
    found = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids = list(dict.fromkeys(int(i) for i in [*found, *extra]))
    if not ids:
        raise ValueError(
            "neither the tokenizer nor the generation config has an eos token, so no completion "
            "could end; set tokenizer.eos_token (or generation_config.eos_token_id)."
        )
    return ids


def first_stop(ids: Sequence[int], stops: Sequence[int]) -> int:
    """Index of the first stop id in ``ids``, or ``len(ids)`` when none occurs."""
    stop_set = set(stops)
    return next((i for i, token in enumerate(ids) if token in stop_set), len(ids))


def decode_content(tokenizer: Any, ids: Sequence[int]) -> str:
    """Text of ``ids`` without the tokenizer's BOS, EOS and pad (they are not content).

    Other special tokens stay: a chat prompt keeps its role markers (``<|user|>``...), which a
    reward model reading the text needs to see who said what.
    """
    drop = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    return tokenizer.decode([int(i) for i in ids if int(i) not in drop], skip_special_tokens=False)


def same_encoding(a: Any, b: Any) -> bool:
    """Whether two tokenizers give the same ids: vocabulary, special ids and prompt encoding."""
    if a is b:
        return True
    specials = ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id")
    if any(getattr(a, name, None) != getattr(b, name, None) for name in specials):
        return False
    probe = "Hello world, how are you?"  # catches different BOS rules over one vocabulary
    return a.get_vocab() == b.get_vocab() and encode_prompt(a, probe) == encode_prompt(b, probe)

"""Token layout of a scored sequence, the length policy and the pairwise collator.

**Decoder reward models.** A scored sequence is ``prompt_ids + completion_ids + [eos]``, with
the one encoding of :mod:`rlhf_gym.lm.encoding`: the prompt as the env encodes it (the
tokenizer's BOS, never doubled on chat-templated text), the completion without special tokens,
cut at its first stop id (what the policy wrote after stopping is not content), then one EOS,
so the reward is always read at an EOS token, in training and in scoring alike, on exactly the
ids the policy's episodes hold.

**Encoder reward models** (BERT family) read a text pair as their own tokenizer encodes it,
``tokenizer(prompt, completion)`` with its special tokens (``[CLS] prompt [SEP] completion
[SEP]``), so their head pools where it was trained to (:func:`encode_text_pair`).

**Length policy.** With ``truncation="error"`` (the default) a sequence longer than
``max_length`` raises (or, with ``skip_invalid``, is skipped and counted). With
``truncation="left"`` the prompt loses tokens from its left end and the completion is kept whole;
a completion that alone does not fit is still an error. Truncations are counted and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from rlhf_gym.lm.encoding import encode_completion, encode_prompt, first_stop, stop_ids
from rlhf_gym.reward_models.data import PreferenceDataError, PreferencePair

logger = logging.getLogger(__name__)

Truncation = Literal["error", "left"]


def check_tokenizer(tokenizer: Any) -> None:
    """Check the tokenizer can pad and terminate: a pad token distinct from the EOS token.

    Raises:
        PreferenceDataError: saying which token to set.
    """
    if tokenizer.eos_token_id is None:
        raise PreferenceDataError("the tokenizer has no eos token; set tokenizer.eos_token.")
    if tokenizer.pad_token_id is None:
        raise PreferenceDataError(
            "the tokenizer has no pad token; set one that differs from eos, e.g. "
            "tokenizer.add_special_tokens({'pad_token': '<pad>'}), then resize the embeddings."
        )
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise PreferenceDataError(
            f"pad and eos are the same token (id {tokenizer.eos_token_id}); the reward is read at "
            "the last non-pad token, so pad must differ from eos. Add a distinct pad token."
        )


def join_ids(
    prompt_ids: Sequence[int],
    completion_ids: Sequence[int],
    eos_id: int,
    max_length: int | None = None,
    truncation: Truncation = "error",
    stops: Sequence[int] | None = None,
) -> tuple[list[int], bool]:
    """Lay out ``prompt + completion (cut at first stop id) + eos``; return ids and whether cut.

    ``stops`` defaults to ``[eos_id]``; pass :func:`~rlhf_gym.lm.encoding.stop_ids` for a
    tokenizer whose chat model stops on several tokens.

    Raises:
        PreferenceDataError: when the sequence is too long and cannot be truncated.
    """
    completion = list(completion_ids)
    completion = completion[: first_stop(completion, [eos_id] if stops is None else stops)]
    completion.append(eos_id)
    prompt = list(prompt_ids)
    if max_length is None or len(prompt) + len(completion) <= max_length:
        return prompt + completion, False
    total = len(prompt) + len(completion)
    if truncation != "left":
        raise PreferenceDataError(
            f"sequence has {total} tokens, over max_length={max_length}; raise max_length or pass "
            "truncation='left' to drop prompt tokens from the left."
        )
    if len(completion) > max_length:
        raise PreferenceDataError(
            f"completion alone has {len(completion)} tokens (with eos) > max_length={max_length}; "
            "completions are never truncated."
        )
    keep = max_length - len(completion)
    return prompt[len(prompt) - keep :] + completion, True


def encode_text_pair(
    tokenizer: Any, prompt: str, completion: str, max_length: int
) -> tuple[dict[str, list[int]], bool]:
    """An encoder reward model's input: ``tokenizer(prompt, completion)``, special tokens and all.

    A pair over ``max_length`` loses prompt tokens from the left (the completion stays whole);
    returns the encoding and whether it was cut.

    Raises:
        PreferenceDataError: when the completion alone does not fit.
    """
    row = dict(tokenizer(prompt, completion))
    if len(row["input_ids"]) <= max_length:
        return row, False
    rest = len(row["input_ids"]) - len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if rest >= max_length:
        raise PreferenceDataError(
            f"completion alone has {rest} tokens with the special tokens, and max_length="
            f"{max_length} leaves no room for the prompt; completions are never truncated: "
            "raise max_length."
        )
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"  # the end of a prompt is what the completion answers
    try:
        row = dict(tokenizer(prompt, completion, truncation="only_first", max_length=max_length))
    finally:
        tokenizer.truncation_side = side
    return row, True


@dataclass
class EncodedPairs:
    """Encoded pairs ready for :class:`PairwiseCollator`, with counts of what was altered."""

    rows: list[dict[str, Any]]
    truncated: int = 0
    skipped: int = 0


def encode_pairs(
    pairs: Sequence[PreferencePair],
    tokenizer: Any,
    *,
    max_length: int = 512,
    truncation: Truncation = "error",
    skip_invalid: bool = False,
) -> EncodedPairs:
    """Tokenize pairs into ``chosen_ids``/``rejected_ids``/``margin``/``pair`` (index) rows.

    The decoder layout of the module docstring, so a trained reward model scores exactly the
    ids it was trained on.

    Raises:
        PreferenceDataError: for a bad tokenizer, or a too-long pair unless ``skip_invalid``.
    """
    check_tokenizer(tokenizer)
    stops, eos = stop_ids(tokenizer), tokenizer.eos_token_id
    out = EncodedPairs(rows=[])
    for index, pair in enumerate(pairs):
        prompt_ids = encode_prompt(tokenizer, pair.prompt)
        try:
            (chosen, cut_c), (rejected, cut_r) = (
                join_ids(
                    prompt_ids,
                    encode_completion(tokenizer, completion),
                    eos,
                    max_length,
                    truncation,
                    stops,
                )
                for completion in (pair.chosen, pair.rejected)
            )
        except PreferenceDataError as err:
            if not skip_invalid:
                raise PreferenceDataError(f"pair {index}: {err}") from err
            out.skipped += 1
            continue
        out.truncated += int(cut_c or cut_r)
        out.rows.append(
            {"chosen_ids": chosen, "rejected_ids": rejected, "margin": pair.margin, "pair": index}
        )
    if out.truncated or out.skipped:
        logger.warning(
            "encoding: %d pair(s) prompt-truncated from the left, %d skipped as too long",
            out.truncated,
            out.skipped,
        )
    return out


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into ``(input_ids, attention_mask)`` long tensors."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


@dataclass
class PairwiseCollator:
    """Batches encoded pairs: chosen rows first, then rejected rows, in one padded tensor."""

    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate rows into ``input_ids``, ``attention_mask`` (2B rows) and ``margin`` (B)."""
        sequences = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
        ids, mask = pad_batch(sequences, self.pad_token_id)
        margin = torch.tensor([float(r.get("margin", 0.0)) for r in rows], dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": mask, "margin": margin}

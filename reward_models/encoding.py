"""Token layout of a scored sequence, the length policy and the pairwise collator.

A scored sequence is ``prompt_ids + completion_ids + [eos]``: prompt and completion are
tokenized separately without special tokens, the completion is cut at its first EOS (what the
policy wrote after stopping is not content) and one EOS is appended, so the reward is always read
at an EOS token, in training and in scoring alike.

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
) -> tuple[list[int], bool]:
    """Lay out ``prompt + completion (cut at first eos) + eos``; return ids and whether truncated.

    Raises:
        PreferenceDataError: when the sequence is too long and cannot be truncated.
    """
    completion = list(completion_ids)
    if eos_id in completion:
        completion = completion[: completion.index(eos_id)]
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


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


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

    Raises:
        PreferenceDataError: for a bad tokenizer, or a too-long pair unless ``skip_invalid``.
    """
    check_tokenizer(tokenizer)
    out = EncodedPairs(rows=[])
    for index, pair in enumerate(pairs):
        prompt_ids = encode_text(tokenizer, pair.prompt)
        try:
            (chosen, cut_c), (rejected, cut_r) = (
                join_ids(prompt_ids, encode_text(tokenizer, completion), tokenizer.eos_token_id,
                         max_length, truncation)
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

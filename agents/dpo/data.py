"""DPO rows: the one encoding of (prompt, completion), a collator, and the reference's log-probs.

**Token layout.** Each side of a pair is ``prompt_ids + completion_ids + [eos]``, laid out by
:func:`~rlhf_gym.reward_models.encoding.join_ids`: the prompt as the env encodes it
(:func:`~rlhf_gym.lm.encoding.encode_prompt`, the tokenizer's BOS, never doubled), the
completion without special tokens (:func:`~rlhf_gym.lm.encoding.encode_completion`) cut at its
first stop id (:func:`~rlhf_gym.lm.encoding.stop_ids`), then the tokenizer's EOS, as an env
episode ends. The log-prob of a completion sums over its tokens and that EOS, so the policy
learns where to stop too. ``max_length`` and ``truncation`` follow the reward model's policy:
an over-long pair raises, or with ``"left"`` loses prompt tokens from the left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from rlhf_gym.agents.dpo.logprobs import sequence_logprobs
from rlhf_gym.lm.encoding import encode_completion, encode_prompt, first_stop, stop_ids
from rlhf_gym.reward_models.data import PreferenceDataError, PreferencePair
from rlhf_gym.reward_models.encoding import Truncation, check_tokenizer, join_ids, pad_batch
from torch import nn


def _side(
    prompt: list[int], completion: str, tokenizer: Any, max_length: int,
    truncation: Truncation, stops: list[int],
) -> tuple[list[int], int, bool]:  # fmt: skip
    """(ids, index of the first completion token, whether the prompt was cut)."""
    completion_ids = encode_completion(tokenizer, completion)
    kept = first_stop(completion_ids, stops) + 1  # the completion's tokens and one EOS
    ids, cut = join_ids(prompt, completion_ids, tokenizer.eos_token_id, max_length, truncation,
                        stops)  # fmt: skip
    if len(ids) == kept:
        raise PreferenceDataError(
            f"the completion fills max_length={max_length} and leaves no prompt token to "
            "predict its first token from; raise max_length."
        )
    return ids, len(ids) - kept, cut


def encode_dpo_pairs(
    pairs: Sequence[PreferencePair],
    tokenizer: Any,
    *,
    max_length: int,
    truncation: Truncation = "error",
) -> list[dict[str, Any]]:
    """Encode pairs as rows of ``chosen_ids``, ``rejected_ids``, their completion starts, ``pair``.

    Raises:
        PreferenceDataError: naming the pair, for a sequence over ``max_length`` (unless
            ``truncation="left"`` can shorten its prompt) or a prompt of no tokens (nothing to
            condition the first completion token on: the tokenizer adds no BOS).
    """
    check_tokenizer(tokenizer)
    stops = stop_ids(tokenizer)
    rows = []
    for index, pair in enumerate(pairs):
        prompt = encode_prompt(tokenizer, pair.prompt)
        if not prompt:
            raise PreferenceDataError(
                f"pair {index}: the prompt is empty and the tokenizer adds no BOS, so the first "
                "completion token has nothing to be predicted from; give every pair a prompt."
            )
        try:
            chosen, chosen_start, _ = _side(prompt, pair.chosen, tokenizer, max_length,
                                            truncation, stops)  # fmt: skip
            rejected, rejected_start, _ = _side(prompt, pair.rejected, tokenizer, max_length,
                                                truncation, stops)  # fmt: skip
        except PreferenceDataError as err:
            raise PreferenceDataError(f"pair {index}: {err} (--max-length, --truncation)") from err
        rows.append({"chosen_ids": chosen, "rejected_ids": rejected, "chosen_start": chosen_start,
                     "rejected_start": rejected_start, "pair": index})  # fmt: skip
    return rows


@dataclass
class DPOCollator:
    """Batches rows: chosen sequences first, then rejected, right-padded in one tensor.

    Rows that carry ``ref_chosen``/``ref_rejected`` (the reference's summed log-probs, see
    :func:`add_reference_logprobs`) pass them on as ``(B,)`` float tensors.
    """

    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask``, ``completion_mask`` (2B rows), and the references."""
        sequences = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
        starts = [r["chosen_start"] for r in rows] + [r["rejected_start"] for r in rows]
        ids, mask = pad_batch(sequences, self.pad_token_id)
        columns = torch.arange(ids.shape[1])[None, :]
        completion = (columns >= torch.tensor(starts)[:, None]).long() * mask
        batch = {"input_ids": ids, "attention_mask": mask, "completion_mask": completion}
        if "ref_chosen" in rows[0]:
            for key in ("ref_chosen", "ref_rejected"):
                batch[key] = torch.tensor([r[key] for r in rows], dtype=torch.float32)
        return batch


@torch.no_grad()
def add_reference_logprobs(
    reference: nn.Module, rows: list[dict[str, Any]], pad_token_id: int, batch_size: int = 64
) -> None:
    """Store the reference's summed completion log-probs in each row, in place (no grad).

    Computed once before training, so the reference need not be held during it.
    """
    device = next(reference.parameters()).device
    was_training = reference.training
    reference.eval()
    collate = DPOCollator(pad_token_id)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        batch = {k: v.to(device) for k, v in collate(chunk).items()}
        lp = sequence_logprobs(reference, batch["input_ids"], batch["attention_mask"],
                               batch["completion_mask"]).tolist()  # fmt: skip
        for row, chosen, rejected in zip(chunk, lp[: len(chunk)], lp[len(chunk) :], strict=True):
            row["ref_chosen"], row["ref_rejected"] = chosen, rejected
    reference.train(was_training)

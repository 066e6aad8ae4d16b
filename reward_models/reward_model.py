"""A reward model, ours or anyone's, as a :class:`~rlhf_gym.reward_models.protocol.RewardSource`.

Scores are ``gain * raw + bias``; gain and bias come from :func:`fit_normalisation` and are
saved in ``rlhf_gym_reward.json`` next to the weights (safetensors), which load back with plain
transformers (``AutoModelForSequenceClassification.from_pretrained(path)`` gives the raw scores)
or with :func:`load_reward_model` (normalised scores, the protocol, the token layout).

:func:`load_reward_model` also loads any one-output ``AutoModelForSequenceClassification``
folder or hub id (TRL's, or a hub reward model): without our metadata file the gain is 1, the
bias 0 and ``max_length`` the model's own limit. Decoders read our layout at the last non-pad
token; encoders (BERT family) read ``tokenizer(prompt, completion)`` where their head pools.
Ids from a policy are only ever scored together with the policy's tokenizer: when it differs
from the reward model's (or the model is an encoder) they are decoded and re-encoded as text.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    RepositoryNotFoundError,
)
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.lm.encoding import (
    decode_content,
    encode_completion,
    encode_prompts,
    first_stop,
    same_encoding,
    stop_ids,
)
from rlhf_gym.reward_models.encoding import (
    Truncation,
    check_tokenizer,
    encode_text_pair,
    join_ids,
    pad_batch,
)
from rlhf_gym.reward_models.model import (
    LinearHeadRewardModel,
    default_max_length,
    is_encoder,
    load_reward_network,
    reward_forward,
)
from rlhf_gym.reward_models.protocol import check_scores
from rlhf_gym.reward_models.stats import normalisation
from torch import nn
from transformers import AutoTokenizer

META_FILE = "rlhf_gym_reward.json"

#: A laid-out sequence: decoder ids, or an encoder's tokenizer output (ids, types, mask).
Row = Sequence[int] | Mapping[str, Sequence[int]]


class RewardModel:
    """Batched, normalised scoring with a reward network (see the module docstring).

    Args:
        model: the network: ours (:mod:`rlhf_gym.reward_models.model`) or any one-output
            ``AutoModelForSequenceClassification``, decoder or encoder.
        tokenizer: the reward model's tokenizer (a pad token; decoders: an EOS distinct from
            pad).
        gain: multiplies raw scores. bias: added after.
        max_length: longest scored sequence; longer prompts lose tokens from the left (counted,
            warned once), a completion that alone does not fit raises.
        batch_size: sequences per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        policy_tokenizer: the tokenizer of the ids :meth:`score_ids` gets when its caller names
            none. Ids whose tokenizer differs from ``tokenizer`` are re-tokenized (warned once).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        gain: float = 1.0,
        bias: float = 0.0,
        max_length: int = 512,
        batch_size: int = 64,
        device: str | torch.device = "auto",
        policy_tokenizer: Any = None,
    ) -> None:
        self.encoder = is_encoder(model)
        check_scoring_tokenizer(tokenizer, self.encoder)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.stop_ids = [] if self.encoder else stop_ids(tokenizer)
        self.gain, self.bias = float(gain), float(bias)
        self.max_length, self.batch_size = max_length, batch_size
        self.policy_tokenizer = policy_tokenizer
        self._compared: tuple[Any, bool] | None = None  # (last ids' tokenizer, shares ours)
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _warn_truncated(self, cut: bool) -> None:
        if cut:
            self._warn_once(
                "truncate",
                f"reward model: prompts over max_length={self.max_length} tokens "
                "are truncated from the left (completions are kept whole).",
            )

    def _layout(
        self, prompt_ids: Sequence[int], completion_ids: Sequence[int], truncation: Truncation
    ) -> list[int]:
        eos = self.tokenizer.eos_token_id
        ids, cut = join_ids(
            prompt_ids, completion_ids, eos, self.max_length, truncation, self.stop_ids
        )
        self._warn_truncated(cut)
        return ids

    def _text_rows(self, prompts: Sequence[str], completions: Sequence[str]) -> list[Row]:
        """Lay out text pairs the way this model reads them (see the module docstring)."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions.")
        tok = self.tokenizer
        if not self.encoder:
            return [
                self._layout(p_ids, encode_completion(tok, completion), "left")
                for p_ids, completion in zip(encode_prompts(tok, prompts), completions, strict=True)
            ]
        rows: list[Row] = []
        for prompt, completion in zip(prompts, completions, strict=True):
            row, cut = encode_text_pair(tok, prompt, completion, self.max_length)
            self._warn_truncated(cut)
            rows.append(row)
        return rows

    @torch.no_grad()
    def _forward(self, rows: Sequence[Row]) -> torch.Tensor:
        if self.encoder:  # the model's own head pools (BERT: the [CLS] position)
            rows = [dict(r) for r in rows]  # right padding keeps [CLS] at position 0
            inputs = self.tokenizer.pad(rows, padding_side="right", return_tensors="pt")
            return self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits[:, 0]
        ids, mask = pad_batch(rows, self.tokenizer.pad_token_id)
        return reward_forward(self.model, ids.to(self.device), mask.to(self.device))

    def raw_scores(self, sequences: Sequence[Row]) -> np.ndarray:
        """Unnormalised rewards of laid-out sequences, in batches.

        Decoders take id lists (``prompt + completion + [eos]``), encoders their tokenizer's
        pair encodings (dicts of ``input_ids``, ``attention_mask``...).
        """
        out = [
            self._forward(sequences[start : start + self.batch_size]).float().cpu()
            for start in range(0, len(sequences), self.batch_size)
        ]
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def _finish(self, rows: list[Row]) -> np.ndarray:
        scores = self.gain * self.raw_scores(rows) + self.bias
        return check_scores(scores, len(rows), "RewardModel")

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Normalised reward for each (prompt, completion) text pair."""
        return self._finish(self._text_rows(prompts, completions))

    def score_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        *,
        tokenizer: Any = None,
    ) -> np.ndarray:
        """Normalised reward from a policy's token ids.

        Args:
            prompt_ids: the prompts as the policy saw them (BOS included).
            completion_ids: the completions; each is cut at its first stop id.
            tokenizer: the tokenizer that wrote the ids (the env passes the policy's);
                defaults to ``policy_tokenizer``. When it differs from the reward model's
                (vocabulary, special ids or encoding), or the model is an encoder, the ids are
                decoded (without BOS, EOS and pad) and the text is scored.

        Raises:
            ValueError: when no tokenizer is known for the ids, or the lengths differ.
        """
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(
                f"got {len(prompt_ids)} prompts but {len(completion_ids)} completions."
            )
        source = tokenizer if tokenizer is not None else self.policy_tokenizer
        if source is None:
            raise ValueError(
                "score_ids needs the tokenizer the ids come from, else a reward model with "
                "another vocabulary would read foreign ids: pass score_ids(..., tokenizer="
                "<policy tokenizer>), load with load_reward_model(path, policy_tokenizer=...), "
                "or score text with score(prompts, completions)."
            )
        if self.encoder or not self._shares_tokenizer(source):
            return self.score(*self._decode(source, prompt_ids, completion_ids))
        rows = [self._layout(p, c, "left") for p, c in zip(prompt_ids, completion_ids, strict=True)]
        return self._finish(rows)

    def _shares_tokenizer(self, other: Any) -> bool:
        """Whether ``other`` encodes text as ours does (compared once per tokenizer object)."""
        if self._compared is None or self._compared[0] is not other:
            self._compared = (other, same_encoding(self.tokenizer, other))
        return self._compared[1]

    def _decode(
        self,
        source: Any,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
    ) -> tuple[list[str], list[str]]:
        if not self.encoder:
            self._warn_once(
                "retokenize",
                "reward model and policy tokenizers differ: token ids are "
                "decoded with the policy tokenizer and re-tokenized for the reward model.",
            )
        stops = stop_ids(source) if source.eos_token_id is not None else []
        prompts = [decode_content(source, ids) for ids in prompt_ids]
        completions = [decode_content(source, c[: first_stop(c, stops)]) for c in completion_ids]
        return prompts, completions

    def fit_normalisation(
        self, prompts: Sequence[str], completions: Sequence[str]
    ) -> tuple[float, float]:
        """Set gain and bias so these completions (SFT samples) score mean 0, std 1; return them."""
        self.gain, self.bias = normalisation(self.raw_scores(self._text_rows(prompts, completions)))
        return self.gain, self.bias

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write weights (safetensors), tokenizer and ``rlhf_gym_reward.json`` to ``path``."""
        os.makedirs(path, exist_ok=True)
        self.model.save_pretrained(path)  # transformers 5 writes safetensors only
        self.tokenizer.save_pretrained(path)
        linear = isinstance(self.model, LinearHeadRewardModel)
        meta = {
            "gain": self.gain,
            "bias": self.bias,
            "max_length": self.max_length,
            "head": "linear" if linear else "sequence_classification",
            "layout": (
                "tokenizer(prompt, completion), read where the head pools"
                if self.encoder
                else "encode_prompt + completion_ids (cut at first stop id) + [eos]"
            ),
        }
        with open(os.path.join(path, META_FILE), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> RewardModel:
        """Load a reward model folder or hub id; see :func:`load_reward_model`."""
        meta = read_metadata(name_or_path)
        tokenizer = kwargs.pop("tokenizer", None)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = load_reward_network(name_or_path, meta.get("head", "sequence_classification"))
        if tokenizer.pad_token_id is None and model.config.pad_token_id is not None:
            # the model names its pad (decoder RMs saved by TRL often do); batching needs one
            tokenizer.pad_token = tokenizer.convert_ids_to_tokens(model.config.pad_token_id)
        options = {
            "gain": meta.get("gain", 1.0),
            "bias": meta.get("bias", 0.0),
            "max_length": meta.get("max_length") or default_max_length(model.config, tokenizer),
            **kwargs,
        }
        return cls(model, tokenizer, **options)


def check_scoring_tokenizer(tokenizer: Any, encoder: bool) -> None:
    """A reward model's tokenizer must pad; a decoder's also ends sequences with a distinct EOS.

    Raises:
        ValueError: naming the token to set.
    """
    if encoder and tokenizer.pad_token_id is None:
        raise ValueError(
            "the reward model's tokenizer has no pad token, so batches cannot be padded; set "
            "tokenizer.pad_token (e.g. to its [PAD] token) and pass tokenizer=."
        )
    if not encoder:
        check_tokenizer(tokenizer)


def read_metadata(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Our ``rlhf_gym_reward.json`` of a folder or hub repo, or ``{}`` when it has none.

    Raises:
        FileNotFoundError: when ``name_or_path`` is neither a folder nor a hub repo id.
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        path = os.path.join(name, META_FILE)
        return _read_json(path) if os.path.isfile(path) else {}
    missing = FileNotFoundError(
        f"{name}: no such folder or hub repo, so not a saved rlhf_gym reward model nor any "
        "AutoModelForSequenceClassification; pass the folder or hub id of one."
    )
    if os.path.exists(name) or os.path.isabs(name) or name.startswith((".", "~")):
        raise missing
    try:
        return _read_json(hf_hub_download(name, META_FILE))
    except EntryNotFoundError:  # a reward model from elsewhere: no metadata, the defaults
        return {}
    except (HFValidationError, RepositoryNotFoundError) as err:
        raise missing from err


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_reward_model(
    name_or_path: str | os.PathLike, *, policy_tokenizer: Any = None, **kwargs: Any
) -> RewardModel:
    """Load a reward model: ours, or any one-output ``AutoModelForSequenceClassification``.

    Args:
        name_or_path: a folder or hub id. Our ``rlhf_gym_reward.json`` (gain, bias,
            max_length, head) is optional: without it gain is 1, bias 0 and max_length the
            model's and tokenizer's own limit.
        policy_tokenizer: the policy's tokenizer, used by :meth:`RewardModel.score_ids` when
            its caller names none.
        kwargs: override :class:`RewardModel`'s arguments (``device``, ``max_length``...), or
            ``tokenizer=`` to use another tokenizer than the one saved with the model.

    Raises:
        ValueError: when the checkpoint is no one-output classifier, or its tokenizer lacks a
            needed token.
    """
    return RewardModel.from_pretrained(name_or_path, policy_tokenizer=policy_tokenizer, **kwargs)

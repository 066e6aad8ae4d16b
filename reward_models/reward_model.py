"""A trained reward model as a :class:`~rlhf_gym.reward_models.protocol.RewardSource`.

Scores are ``gain * raw + bias``; gain and bias come from :func:`fit_normalisation` and are
saved in ``rlhf_gym_reward.json`` next to the weights (safetensors), which load back with plain
transformers (``AutoModelForSequenceClassification.from_pretrained(path)`` gives the raw scores)
or with :func:`load_reward_model` (normalised scores, the protocol, the token layout).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.reward_models.encoding import (
    Truncation,
    check_tokenizer,
    encode_text,
    join_ids,
    pad_batch,
)
from rlhf_gym.reward_models.model import LinearHeadRewardModel, load_reward_network, reward_forward
from rlhf_gym.reward_models.protocol import check_scores
from rlhf_gym.reward_models.stats import normalisation
from torch import nn
from transformers import AutoTokenizer

META_FILE = "rlhf_gym_reward.json"


def _same_tokenizer(a: Any, b: Any) -> bool:
    return a is b or (a.get_vocab() == b.get_vocab() and a.eos_token_id == b.eos_token_id)


class RewardModel:
    """Batched, normalised scoring with a trained reward network.

    Args:
        model: the network (see :mod:`rlhf_gym.reward_models.model`).
        tokenizer: the reward model's tokenizer (pad distinct from eos).
        gain: multiplies raw scores. bias: added after.
        max_length: longest scored sequence; longer prompts lose tokens from the left (counted,
            warned once), a completion that alone does not fit raises.
        batch_size: sequences per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        policy_tokenizer: the policy's tokenizer, when ``score_ids`` gets the policy's ids. If it
            differs from ``tokenizer`` the ids are decoded and re-tokenized (warned once).
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
        check_tokenizer(tokenizer)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.gain, self.bias = float(gain), float(bias)
        self.max_length, self.batch_size = max_length, batch_size
        self.policy_tokenizer = policy_tokenizer
        self._retokenize = policy_tokenizer is not None and not _same_tokenizer(
            tokenizer, policy_tokenizer
        )
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _layout(
        self, prompt_ids: Sequence[int], completion_ids: Sequence[int], truncation: Truncation
    ) -> list[int]:
        ids, cut = join_ids(
            prompt_ids, completion_ids, self.tokenizer.eos_token_id, self.max_length, truncation
        )
        if cut:
            self._warn_once(
                "truncate",
                f"reward model: prompts over max_length={self.max_length} tokens "
                "are truncated from the left (completions are kept whole).",
            )
        return ids

    @torch.no_grad()
    def raw_scores(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Unnormalised rewards of already laid-out id sequences, in batches."""
        out = []
        for start in range(0, len(sequences), self.batch_size):
            ids, mask = pad_batch(
                sequences[start : start + self.batch_size], self.tokenizer.pad_token_id
            )
            out.append(
                reward_forward(self.model, ids.to(self.device), mask.to(self.device)).float().cpu()
            )
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def _finish(self, sequences: list[list[int]]) -> np.ndarray:
        scores = self.gain * self.raw_scores(sequences) + self.bias
        return check_scores(scores, len(sequences), "RewardModel")

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Normalised reward for each (prompt, completion) text pair."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions.")
        tok = self.tokenizer
        return self._finish(
            [
                self._layout(encode_text(tok, p), encode_text(tok, c), "left")
                for p, c in zip(prompts, completions, strict=True)
            ]
        )

    def score_ids(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """Normalised reward from token ids (policy ids; re-tokenized if vocabularies differ)."""
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(
                f"got {len(prompt_ids)} prompts but {len(completion_ids)} completions."
            )
        if self._retokenize:
            self._warn_once(
                "retokenize",
                "reward model and policy tokenizers differ: token ids are "
                "decoded with the policy tokenizer and re-tokenized for the reward model.",
            )
            pol = self.policy_tokenizer
            eos = pol.eos_token_id
            cut = [list(c)[: list(c).index(eos)] if eos in c else list(c) for c in completion_ids]
            return self.score(
                pol.batch_decode(prompt_ids, skip_special_tokens=True),
                pol.batch_decode(cut, skip_special_tokens=True),
            )
        return self._finish(
            [self._layout(p, c, "left") for p, c in zip(prompt_ids, completion_ids, strict=True)]
        )

    def fit_normalisation(
        self, prompts: Sequence[str], completions: Sequence[str]
    ) -> tuple[float, float]:
        """Set gain and bias so these completions (SFT samples) score mean 0, std 1; return them."""
        tok = self.tokenizer
        raw = self.raw_scores(
            [
                self._layout(encode_text(tok, p), encode_text(tok, c), "left")
                for p, c in zip(prompts, completions, strict=True)
            ]
        )
        self.gain, self.bias = normalisation(raw)
        return self.gain, self.bias

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write weights (safetensors), tokenizer and ``rlhf_gym_reward.json`` to ``path``."""
        os.makedirs(path, exist_ok=True)
        self.model.save_pretrained(path)  # transformers 5 writes safetensors only
        self.tokenizer.save_pretrained(path)
        head = (
            "linear" if isinstance(self.model, LinearHeadRewardModel) else "sequence_classification"
        )
        meta = {
            "gain": self.gain,
            "bias": self.bias,
            "max_length": self.max_length,
            "head": head,
            "layout": "prompt_ids + completion_ids (cut at first eos) + [eos]",
        }
        with open(os.path.join(path, META_FILE), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> RewardModel:
        """Load what :meth:`save_pretrained` wrote; ``kwargs`` override the constructor's."""
        meta_path = os.path.join(path, META_FILE)
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(
                f"{meta_path} not found: {path} is not a saved rlhf_gym reward model."
            )
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
        model = load_reward_network(path, meta.get("head", "sequence_classification"))
        options = {
            "gain": meta["gain"],
            "bias": meta["bias"],
            "max_length": meta["max_length"],
            **kwargs,
        }
        return cls(model, AutoTokenizer.from_pretrained(path), **options)


def load_reward_model(path: str | os.PathLike, **kwargs: Any) -> RewardModel:
    """Load a saved reward model as a reward source (see :meth:`RewardModel.from_pretrained`)."""
    return RewardModel.from_pretrained(path, **kwargs)

"""Held-out evaluation of a policy: reward, gold utility, KL to the reference, length, diversity.

Example (``policy``, ``tokenizer`` and ``reward`` being any model, tokenizer and reward source):

    result = evaluate_policy(policy, tokenizer, prompts, reward, reference=sft_model)
    print(result.table())
    json.dump(result.to_dict(), open("eval.json", "w"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rlhf_gym.evaluation.metrics import distinct_n, self_similarity, word_lengths
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.lm.loading import ModelLike, load_causal_lm, load_tokenizer
from rlhf_gym.lm.sampling import completion_logprobs, sample_batch
from rlhf_gym.reward_models.protocol import as_reward_source, check_scores


def _mean(values: Sequence[float] | None) -> float | None:
    return float(np.mean(values)) if values else None


@dataclass
class EvalResult:
    """Per-sample results of one evaluation and their aggregates.

    Samples are ordered prompt by prompt: the ``num_samples_per_prompt`` samples of
    ``prompts[0]`` come first. Lengths are whitespace words of the completion.

    Attributes:
        prompts: the prompt of each sample.
        completions: each completion's text (tokens before the first EOS).
        scores: the reward source's score of each sample.
        gold: the gold utility of each sample, or None without a gold source.
        kl: per-sequence ``Σ_t log π(a_t|s_t) − log π_ref(a_t|s_t)`` over the sampled tokens
            (EOS included), or None without a reference.
        length: completion length in words.
        num_tokens: sampled tokens per completion (EOS included).
        ended: whether each completion emitted EOS within ``max_new_tokens``.
        settings: how the samples were drawn (temperature, seed, ...), kept in ``to_dict``.
    """

    prompts: list[str]
    completions: list[str]
    scores: list[float]
    gold: list[float] | None = None
    kl: list[float] | None = None
    length: list[int] = field(default_factory=list)
    num_tokens: list[int] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def reward_mean(self) -> float:
        """Mean score of the reward source."""
        return float(np.mean(self.scores))

    @property
    def gold_mean(self) -> float | None:
        """Mean gold utility, or None without gold."""
        return _mean(self.gold)

    @property
    def kl_mean(self) -> float | None:
        """Mean per-sequence KL to the reference (nats), or None without a reference."""
        return _mean(self.kl)

    def aggregates(self) -> dict[str, float | None]:
        """The summary numbers, by name (None where not measured)."""
        return {
            "reward_mean": self.reward_mean,
            "reward_std": float(np.std(self.scores)),
            "gold_mean": self.gold_mean,
            "kl_mean": self.kl_mean,
            "length_mean": float(np.mean(self.length)),
            "eos_rate": float(np.mean(self.ended)),
            "distinct_1": distinct_n(self.completions, 1),
            "distinct_2": distinct_n(self.completions, 2),
            "self_similarity": self_similarity(self.completions),
            "num_samples": float(len(self.completions)),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"aggregates": ..., "settings": ..., "samples": [one dict per sample]}``."""
        samples = []
        for i, (p, c) in enumerate(zip(self.prompts, self.completions, strict=True)):
            row: dict[str, Any] = {"prompt": p, "completion": c, "score": self.scores[i]}
            if self.gold is not None:
                row["gold"] = self.gold[i]
            if self.kl is not None:
                row["kl"] = self.kl[i]
            row.update(length=self.length[i], num_tokens=self.num_tokens[i], ended=self.ended[i])
            samples.append(row)
        settings = dict(self.settings)
        return {"aggregates": self.aggregates(), "settings": settings, "samples": samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Rebuild a result written by :meth:`to_dict`."""
        rows = data["samples"]
        has = (lambda key: bool(rows) and key in rows[0])  # noqa: E731
        return cls(
            prompts=[r["prompt"] for r in rows],
            completions=[r["completion"] for r in rows],
            scores=[float(r["score"]) for r in rows],
            gold=[float(r["gold"]) for r in rows] if has("gold") else None,
            kl=[float(r["kl"]) for r in rows] if has("kl") else None,
            length=[int(r["length"]) for r in rows],
            num_tokens=[int(r["num_tokens"]) for r in rows],
            ended=[bool(r["ended"]) for r in rows],
            settings=dict(data.get("settings", {})),
        )

    def table(self) -> str:
        """The aggregates as aligned ``name  value`` lines."""
        lines = [f"{'metric':<16} value", f"{'-' * 16} {'-' * 10}"]
        for name, value in self.aggregates().items():
            shown = "n/a" if value is None else f"{value:.4f}"
            lines.append(f"{name:<16} {shown}")
        return "\n".join(lines)


def evaluate_policy(
    policy: ModelLike,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_source: Any,
    *,
    gold: Any = None,
    reference: ModelLike | None = None,
    num_samples_per_prompt: int = 1,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> EvalResult:
    """Sample completions for ``prompts`` and measure them.

    Args:
        policy: the model to evaluate, or a name/path for ``from_pretrained``.
        tokenizer: its tokenizer (pad distinct from EOS), or a name/path.
        prompts: prompts to complete.
        reward_source: a :class:`~rlhf_gym.reward_models.protocol.RewardSource` or callable.
        gold: an optional second source, the ground truth (e.g. the toy world's gold utility).
        reference: the model KL is measured against (same tokenizer), or a name/path.
        num_samples_per_prompt: completions sampled per prompt.
        max_new_tokens: sampling budget per completion.
        temperature: sampling temperature; log-probs for the KL use the same temperature.
        batch_size: sequences sampled together and per teacher-forced forward.
        seed: seeds the sampler's own generator (torch's global RNG is not touched).
        device: "auto", "cpu", "cuda", ...

    Returns:
        An :class:`EvalResult`.
    """
    if not prompts:
        raise ValueError("evaluate_policy needs at least one prompt.")
    resolved = resolve_device(device)
    tokenizer = load_tokenizer(tokenizer)
    policy_model = load_causal_lm(policy, resolved)
    ref_model = load_causal_lm(reference, resolved) if reference is not None else None
    source = as_reward_source(reward_source)
    gold_source = as_reward_source(gold) if gold is not None else None

    flat = [p for p in prompts for _ in range(num_samples_per_prompt)]
    completions, kls, num_tokens, ended = [], [], [], []
    generator = torch.Generator(resolved).manual_seed(seed)
    for start in range(0, len(flat), batch_size):
        batch = sample_batch(
            policy_model, tokenizer, flat[start : start + batch_size],
            max_new_tokens=max_new_tokens, temperature=temperature, generator=generator,
        )
        completions += batch.completions
        ended += batch.ended
        num_tokens += batch.completion_mask.sum(dim=1).tolist()
        if ref_model is not None:
            lp = completion_logprobs(policy_model, batch, temperature)
            ref_lp = completion_logprobs(ref_model, batch, temperature)
            kls += (lp - ref_lp).sum(dim=1).tolist()

    scores = check_scores(source.score(flat, completions), len(flat), "reward_source")
    gold_scores = None
    if gold_source is not None:
        gold_scores = check_scores(gold_source.score(flat, completions), len(flat), "gold").tolist()
    return EvalResult(
        prompts=flat,
        completions=completions,
        scores=scores.tolist(),
        gold=gold_scores,
        kl=kls if ref_model is not None else None,
        length=word_lengths(completions).tolist(),
        num_tokens=[int(n) for n in num_tokens],
        ended=ended,
        settings={
            "num_prompts": len(prompts), "num_samples_per_prompt": num_samples_per_prompt,
            "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
        },
    )

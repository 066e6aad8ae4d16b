"""Normalise a reward model on its policy's samples, then check the fit on fresh samples.

PPO's KL coefficient only means something against a reward of known scale, so after training
the scores are mapped to mean 0, std 1 on samples from the policy RL starts from (the SFT
model). The gain and bias are fitted on one set of samples and checked on a second, fresh set;
the check also reports how the scores rank against completion length (the verbosity the model
learned) and, when a gold utility is known, against the gold (docs/reward_models.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rlhf_gym.evaluation.metrics import spearman, word_lengths
from rlhf_gym.lm.sampling import sample_completions
from rlhf_gym.reward_models.reward_model import RewardModel


def draw_prompts(pool: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` prompts drawn from ``pool`` with replacement, seeded."""
    return [pool[i] for i in np.random.default_rng(seed).integers(0, len(pool), size=n)]


def sampling_tokenizer(rm: RewardModel, policy_tokenizer: Any = None) -> Any:
    """The tokenizer the policy samples with (see :func:`normalise_on_policy`)."""
    for tokenizer in (policy_tokenizer, rm.policy_tokenizer):
        if tokenizer is not None:
            return tokenizer
    if rm.encoder:
        raise ValueError(
            "an encoder reward model's tokenizer cannot drive the policy; pass "
            "policy_tokenizer=<the policy's tokenizer>."
        )
    return rm.tokenizer


def normalise_on_policy(
    rm: RewardModel,
    policy: Any,
    prompts: Sequence[str],
    *,
    policy_tokenizer: Any = None,
    fit_samples: int = 16384,
    check_samples: int = 4096,
    max_new_tokens: int = 48,
    seed: int = 0,
    gold: Any = None,
    progress: bool = False,
) -> dict[str, float]:
    """Fit ``rm``'s gain and bias on one set of policy samples and check them on a fresh set.

    Args:
        rm: the reward model; its gain and bias are set in place.
        policy: the causal LM whose samples define the scale (the SFT policy), in eval mode.
        prompts: the pool prompts are drawn from.
        policy_tokenizer: the policy's tokenizer, which samples; defaults to the one ``rm`` is
            bound to (``rm.policy_tokenizer``), else ``rm.tokenizer`` (a reward model trained
            from the policy shares it). A reward model from elsewhere scores the sampled text
            with its own tokenizer.
        fit_samples: samples the gain and bias are fitted on (seed ``seed + 1``).
        check_samples: fresh samples for the check (seed ``seed + 2``).
        max_new_tokens: the longest sampled completion.
        seed: the base seed.
        gold: an optional gold reward source to correlate the scores with.
        progress: show a progress bar over each set's sampling.

    Returns:
        ``gain``, ``bias``, the fresh set's ``mean`` and ``std`` (targets 0 and 1),
        ``spearman_length`` and, when ``gold`` is given, ``spearman_gold``.

    Raises:
        ValueError: for an encoder reward model without ``policy_tokenizer`` (its tokenizer
            cannot drive a causal LM).
    """
    tokenizer = sampling_tokenizer(rm, policy_tokenizer)
    fit_prompts = draw_prompts(prompts, fit_samples, seed + 1)
    fit = sample_completions(
        policy,
        tokenizer,
        fit_prompts,
        max_new_tokens=max_new_tokens,
        seed=seed + 1,
        progress=progress,
        desc="normalisation: fit samples",
    )
    gain, bias = rm.fit_normalisation(fit_prompts, fit)
    check_prompts = draw_prompts(prompts, check_samples, seed + 2)
    check = sample_completions(
        policy,
        tokenizer,
        check_prompts,
        max_new_tokens=max_new_tokens,
        seed=seed + 2,
        progress=progress,
        desc="normalisation: check samples",
    )
    scores = rm.score(check_prompts, check)
    result = {
        "gain": gain,
        "bias": bias,
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "spearman_length": spearman(scores, word_lengths(check)),
    }
    if gold is not None:
        result["spearman_gold"] = spearman(scores, gold.score(check_prompts, check))
    return result

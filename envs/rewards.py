"""The reward math, written once and used by every env face and wrapper.

Per token (docs/objective.md), with ``lp = log π_θ(a_t|s_t)`` and ``lr = log π_ref(a_t|s_t)``::

    k1:  kl_t = lp − lr
    k3:  kl_t = (ρ − 1) − log ρ,  ρ = π_ref/π_θ = exp(lr − lp)
    r_t = −β · kl_t + [t = T] · score(x, y)

Everything here works on numpy arrays of any shape, so one env and N envs share the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from rlhf_gym.reward_models.protocol import RewardSource, check_scores

KLEstimator = Literal["k1", "k3"]
KL_ESTIMATORS: tuple[str, ...] = ("k1", "k3")

#: β, the KL coefficient, when nobody names one: the env's, the scripts' and the demo's default.
DEFAULT_KL_COEF = 0.15


def check_estimator(estimator: str) -> KLEstimator:
    """Return ``estimator`` if it is a known KL estimator, else raise a clear error."""
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {estimator!r}.")
    return estimator  # type: ignore[return-value]


def kl_term(policy_logprob: np.ndarray, ref_logprob: np.ndarray, estimator: str) -> np.ndarray:
    """Per-token KL estimator value for the sampled tokens.

    Args:
        policy_logprob: ``log π_θ(a_t|s_t)``.
        ref_logprob: ``log π_ref(a_t|s_t)``, same shape.
        estimator: ``"k1"`` (``lp − lr``, unbiased, can be negative) or ``"k3"``
            (``(ρ − 1) − log ρ`` with ``ρ = π_ref/π_θ``, never negative).

    Returns:
        The estimator value, same shape, float64.
    """
    lp = np.asarray(policy_logprob, dtype=np.float64)
    lr = np.asarray(ref_logprob, dtype=np.float64)
    if check_estimator(estimator) == "k1":
        return lp - lr
    log_rho = lr - lp
    return np.expm1(log_rho) - log_rho


def check_logprobs(
    logprobs: np.ndarray | Sequence[float], num_envs: int, method: str = "set_policy_logprobs"
) -> np.ndarray:
    """``logprobs`` as a float64 ``(num_envs,)`` array, or a clear error.

    Args:
        logprobs: the log-probs handed over.
        num_envs: N.
        method: the handover method, named in the errors (the reference's too).

    Raises:
        ValueError: for another shape, or values that are not finite log-probabilities (<= 0).
    """
    array = np.asarray(logprobs, dtype=np.float64).reshape(-1)
    if array.shape != (num_envs,):
        raise ValueError(f"{method} expects shape ({num_envs},), got {np.shape(logprobs)}.")
    if not (np.isfinite(array).all() and array.max() <= 1e-6):
        raise ValueError(f"{method}: log-probs must be finite and <= 0 (log-probabilities).")
    return array


def kl_logprobs(
    handed: dict[str, np.ndarray],
    logits: dict[str, torch.Tensor],
    actions: np.ndarray,
    kl_coef: float,
    kl_reward: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``log π_θ`` and ``log π_ref`` of a step's actions, the two sides of its KL term.

    Args:
        handed: what the agent handed over for this step, by side (``"policy"``, ``"ref"``).
        logits: the env's runners' logits by name (``"policy"`` for a bound policy, ``"ref"``).
        actions: ``(N,)`` the step's actions.
        kl_coef: β.
        kl_reward: the env's ``kl_reward``.
    """
    policy = policy_logprobs(
        handed.get("policy"), logits.get("policy"), actions, kl_coef, kl_reward
    )
    return policy, reference_logprobs(handed.get("ref"), logits.get("ref"), actions)


def policy_logprobs(
    handover: np.ndarray | None,
    logits: torch.Tensor | None,
    actions: np.ndarray,
    kl_coef: float,
    kl_reward: str,
) -> np.ndarray:
    """``log π_θ(a_t|s_t)`` of a step's actions: handed over, else a bound policy's, else NaN.

    Args:
        handover: what ``set_policy_logprobs`` handed over for this step, or None.
        logits: a bound policy's temperature-scaled ``(N, V)`` logits, or None.
        actions: ``(N,)`` the step's actions.
        kl_coef: β.
        kl_reward: the env's ``kl_reward``.

    Raises:
        RuntimeError: when the KL reward needs log π_θ (β > 0, ``"kl"``) and there is none.
    """
    if handover is not None:
        return handover
    if logits is not None:
        return token_logprobs(logits, actions)
    if kl_coef != 0 and kl_reward == "kl":
        raise RuntimeError(
            f"kl_coef={kl_coef} with kl_reward='kl' needs log π_θ of each action, and the "
            "env has none. Call set_policy_logprob(s)(...) with the act-time log-probs right "
            "before each step, or pass policy_model=<the policy>, or use "
            "kl_reward='ref_logprob' (the learner then adds β·entropy itself)."
        )
    return np.full(len(actions), np.nan)


def reference_logprobs(
    handover: np.ndarray | None, logits: torch.Tensor | None, actions: np.ndarray
) -> np.ndarray:
    """``log π_ref(a_t|s_t)`` of a step's actions: the env's reference's, or handed over.

    Args:
        handover: what ``set_reference_logprobs`` handed over for this step, or None.
        logits: the env's reference logits ``(N, V)``, temperature-scaled; None when the env
            has handed its reference over (``hand_over_reference``).
        actions: ``(N,)`` the step's actions.

    Raises:
        RuntimeError: when the env has handed its reference over and none was handed back, or
            log-probs were handed to an env that runs its own reference.
    """
    if logits is not None:
        if handover is not None:
            raise RuntimeError(
                "reference log-probs were handed over (set_reference_logprobs) to an env that "
                "runs its own reference; call hand_over_reference(True) first."
            )
        return token_logprobs(logits, actions)
    if handover is None:
        raise RuntimeError(
            "the env has handed its reference over (hand_over_reference(True)), so each step "
            "needs log π_ref of its actions: call set_reference_logprobs(...) right before each "
            "step, or hand_over_reference(False) to let the env run its reference again."
        )
    return handover


def kl_part(
    policy_logprob: np.ndarray,
    ref_logprob: np.ndarray,
    kl_coef: float,
    kl_reward: str,
    estimator: str,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The env's own per-token reward against its reference, and the info arrays it reports.

    ``−β·kl_t`` (``kl_reward="kl"``) or ``β·log π_ref`` (``"ref_logprob"``; the entropy half is
    the learner's, docs/objective.md); 0 when β is 0. ``kl`` and ``policy_logprob`` are
    reported only when log π_θ is known (not all NaN).
    """
    kl = kl_term(policy_logprob, ref_logprob, estimator)
    if kl_coef == 0:
        rewards = np.zeros(np.shape(ref_logprob))
    elif kl_reward == "ref_logprob":
        rewards = kl_coef * ref_logprob
    else:
        rewards = -kl_coef * kl
    info = {"ref_logprob": ref_logprob}
    if not np.isnan(policy_logprob).all():  # log π_θ unknown: no KL to report, not a NaN
        info.update(kl=kl, policy_logprob=policy_logprob)
    return rewards, info


def token_reward(kl: np.ndarray, kl_coef: float, score: np.ndarray) -> np.ndarray:
    """``r_t = −β·kl_t + score_t`` where ``score_t`` is 0 except at the last token.

    A NaN ``kl`` (log π_θ unknown) is allowed only with ``kl_coef == 0``.
    """
    kl = np.asarray(kl, dtype=np.float64)
    penalty = np.zeros_like(kl) if kl_coef == 0 else kl_coef * kl
    return np.asarray(score, dtype=np.float64) - penalty


def chosen_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[row, tokens[row]]`` ``(N,)`` in float32, on the logits' device.

    The one computation of a token's log-prob from its logits, shared by the env and an agent
    that prices the reference for it (so both get the same numbers).

    Args:
        logits: ``(N, V)`` next-token logits already divided by the temperature.
        tokens: ``(N,)`` int64 token ids on the logits' device.
    """
    return torch.log_softmax(logits.float(), dim=-1).gather(1, tokens[:, None])[:, 0]


def token_logprobs(logits: torch.Tensor, tokens: np.ndarray | Sequence[int]) -> np.ndarray:
    """:func:`chosen_logprobs` of numpy token ids, as float64 numpy."""
    index = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=logits.device)
    return chosen_logprobs(logits, index).double().cpu().numpy()


def score_completions(
    source: RewardSource | None,
    prompts: Sequence[str],
    completions: Sequence[str],
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    tokenizer: Any = None,
) -> np.ndarray:
    """Score finished episodes in one batched call, checking what the source returned.

    Uses ``source.score_ids(prompt_ids, completion_ids, tokenizer=tokenizer)`` when the source
    has it and the ids' tokenizer (the policy's) is known, so the source can tell its own ids
    from foreign ones; else ``source.score`` on text. ``None`` scores 0 (reward added by
    wrapping).

    Raises:
        ValueError: when the source returns NaN, inf or the wrong shape.
    """
    n = len(prompts)
    if source is None or n == 0:
        return np.zeros(n, dtype=np.float64)
    name = getattr(source, "name", type(source).__name__)
    if hasattr(source, "score_ids") and tokenizer is not None:
        raw = source.score_ids(
            [list(p) for p in prompt_ids], [list(c) for c in completion_ids], tokenizer=tokenizer
        )
    else:
        raw = source.score(list(prompts), list(completions))
    return check_scores(raw, n, repr(name))


def top_p_mask(logits: torch.Tensor, top_p: float, valid_vocab: int | None = None) -> np.ndarray:
    """Boolean ``(N, V)`` mask of the smallest set of tokens whose probability reaches ``top_p``.

    The most likely token is always allowed; ids ``>= valid_vocab`` never are.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
    logits = logits.float()
    if valid_vocab is not None and valid_vocab < logits.shape[-1]:
        logits = logits.clone()
        logits[:, valid_vocab:] = float("-inf")
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of strictly better tokens
    keep_sorted = (before < top_p) & (sorted_probs > 0)
    keep_sorted[:, 0] = True
    mask = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
    return mask.cpu().numpy()

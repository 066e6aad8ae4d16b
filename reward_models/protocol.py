"""One reward protocol for reward models, ensembles and plain Python functions.

A *reward source* maps a batch of (prompt, completion) pairs to one finite score each. The env,
the agent and the evaluation code only ever see this protocol, so a trained reward model, an
ensemble, the toy world's gold utility or an exact-match verifier (RLVR) are interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class RewardSource(Protocol):
    """Scores a batch of completions.

    ``score(prompts, completions)`` takes two equally long lists of strings and returns a float
    array of shape ``(len(prompts),)`` with finite values. Sources that can read token ids
    directly (a reward model sharing the policy's tokenizer) may also implement
    ``score_ids(prompt_ids, completion_ids, *, tokenizer)`` with lists of int lists and the
    tokenizer that wrote them (the policy's), so a source with another vocabulary never reads
    foreign ids: it decodes them with ``tokenizer`` and scores the text. The env calls it when
    present and falls back to text otherwise.
    """

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Return one finite score per (prompt, completion) pair."""
        ...


def check_scores(scores: object, expected: int, source_name: str) -> np.ndarray:
    """Validate what a reward source returned: a finite float array of shape ``(expected,)``.

    Raises:
        ValueError: naming the source and the problem (wrong shape, NaN or inf).
    """
    try:
        raw = np.asarray(scores)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"reward source {source_name} returned {type(scores).__name__}, not numbers: {err}"
        ) from err
    if raw.dtype.kind not in "biuf":  # no silent coercion of '0.5' or None
        first = raw.flat[0] if raw.size else None
        raise ValueError(
            f"reward source {source_name} returned {raw.dtype} values (e.g. {first!r}), not "
            "numbers; return floats, one per completion."
        )
    array = raw.astype(np.float64)
    if array.shape != (expected,):
        raise ValueError(
            f"reward source {source_name} returned shape {array.shape} for {expected} completions; "
            f"it must return one score per completion, shape ({expected},)."
        )
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"reward source {source_name} returned {int(bad.sum())} non-finite score(s) "
            f"(first at index {first}: {array[first]}); scores must be finite floats."
        )
    return array


class CallableReward:
    """Wraps a plain function ``f(prompts, completions) -> scores`` as a :class:`RewardSource`.

    With ``batched=False`` the function is called once per pair as ``f(prompt, completion)``
    and must return one number.
    """

    def __init__(
        self,
        fn: Callable[..., object],
        *,
        batched: bool = True,
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallableReward needs a callable, got {type(fn).__name__}.")
        self.fn = fn
        self.batched = batched
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Call the function and check its output."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"got {len(prompts)} prompts but {len(completions)} completions; pass one each."
            )
        if self.batched:
            raw = self.fn(list(prompts), list(completions))
        else:
            raw = [self.fn(p, c) for p, c in zip(prompts, completions, strict=True)]
        return check_scores(raw, len(prompts), repr(self.name))


def as_reward_source(source: object) -> RewardSource:
    """Accept a reward source or a plain batched callable and return a :class:`RewardSource`."""
    if isinstance(source, RewardSource):
        return source
    if callable(source):
        return CallableReward(source)
    raise TypeError(
        f"{type(source).__name__} is not a reward source: pass an object with "
        "score(prompts, completions) or a callable f(prompts, completions) -> scores."
    )

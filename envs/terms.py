"""The reward terms the episode core composes; each written once, for every env face.

The core (:class:`~rlhf_gym.envs.batch.TextGenerationBatch`) prices every token with its own
reference (the KL part of docs/objective.md). Every other piece of the reward is a term:

* token terms pay something at every step (:class:`KLTerm`: a KL penalty against a further
  reference);
* terminal terms change the score of the episodes that ended on a step, all of them in one
  batched call (:class:`ScoreTerm`, :class:`MissingEOSPenalty`, :class:`LengthPenalty`); they
  run in order, each on the score the previous ones left;
* :class:`TopPMask` restricts the actions (``action_masks()``, as in NLPO).

A term that needs a model's next-token logits names it in ``model``; the core follows every row
with that model's KV cache, one cached forward per step for all rows. The constructor arguments
of the envs (``reward``, ``missing_eos_penalty``, ``mask_model``, ``terms``) and the wrappers of
:mod:`rlhf_gym.envs.wrappers` install the same term objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from rlhf_gym.envs.rewards import check_estimator, kl_term, score_completions, token_logprobs
from rlhf_gym.envs.rewards import top_p_mask as top_p_mask_of
from rlhf_gym.reward_models.protocol import as_reward_source

Info = dict[str, np.ndarray]


@dataclass
class FinishedEpisode:
    """What a face reports about an episode that ended on this step.

    ``info`` holds what the terminal terms add (``eos_penalty``, ``length_penalty``, ...);
    ``episode_return`` is the sum of the episode's rewards.
    """

    prompt: str
    prompt_ids: list[int]
    completion: str
    completion_ids: list[int]
    final_obs: dict[str, np.ndarray]
    truncated: bool
    score: float = 0.0
    episode_return: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class RewardTerm:
    """A piece of the reward; subclasses override the hooks they need.

    Attributes:
        name: unique among a core's terms; a wrapper that replaces a term names it.
        model: a causal LM whose next-token logits the term reads, or None.
    """

    name = "term"
    model: Any = None

    def bind_tokenizer(self, tokenizer: Any) -> None:
        """Called by the core when the term is added: the tokenizer of the episodes' ids."""

    def token(
        self, actions: np.ndarray, policy_logprob: np.ndarray, logits: torch.Tensor | None
    ) -> tuple[np.ndarray | None, Info]:
        """Per-row reward added at this step (None: nothing) and per-row info arrays."""
        return None, {}

    def terminal(
        self, scores: np.ndarray, episodes: Sequence[FinishedEpisode]
    ) -> tuple[np.ndarray, Info]:
        """The ended episodes' scores after this term, and per-episode info arrays."""
        return scores, {}

    def masks(self, logits: torch.Tensor | None, valid_vocab: int) -> np.ndarray | None:
        """``(N, V)`` allowed actions, or None when the term does not restrict them."""
        return None


def score_episodes(terms: Sequence[RewardTerm], episodes: Sequence[FinishedEpisode]) -> None:
    """Run the terminal terms in order over the ended episodes, all at once; set their scores.

    Each term sees the scores the previous ones left; what a term reports lands in the
    episodes' ``info``.
    """
    scores = np.zeros(len(episodes))
    for term in terms:
        scores, term_info = term.terminal(scores, episodes)
        for key, values in term_info.items():
            for episode, value in zip(episodes, values, strict=True):
                episode.info[key] = value
    for episode, value in zip(episodes, scores, strict=True):
        episode.score = float(value)


class ScoreTerm(RewardTerm):
    """Adds a reward source's score of each ended episode (one batched call per step).

    A source with ``score_ids`` gets the episodes' ids together with the policy's tokenizer
    (bound by the core), so it can tell whether the ids are its own or must be re-tokenized.

    Args:
        source: a reward source or a callable ``f(prompts, completions) -> scores``.
        name: ``"score"`` is the env's own reward (``reward=``); other names add a second one.
    """

    def __init__(self, source: object, name: str = "score") -> None:
        self.source, self.name = as_reward_source(source), name
        self.tokenizer: Any = None

    def bind_tokenizer(self, tokenizer: Any) -> None:
        """Remember the policy's tokenizer: the ids handed to ``score_ids`` are its ids."""
        self.tokenizer = tokenizer

    def terminal(
        self, scores: np.ndarray, episodes: Sequence[FinishedEpisode]
    ) -> tuple[np.ndarray, Info]:
        """``scores + source(prompt, completion)``."""
        raw = score_completions(
            self.source,
            [e.prompt for e in episodes],
            [e.completion for e in episodes],
            [e.prompt_ids for e in episodes],
            [e.completion_ids for e in episodes],
            tokenizer=self.tokenizer,
        )
        return scores + raw, ({} if self.name == "score" else {self.name: raw})


class MissingEOSPenalty(RewardTerm):
    """Adds ``penalty`` to the score of episodes truncated before emitting a stop id.

    Any of the env's stop ids (EOS, and a chat model's ``<|end|>``) ends an episode without it.
    """

    name = "eos_penalty"

    def __init__(self, penalty: float) -> None:
        self.penalty = float(penalty)

    def terminal(
        self, scores: np.ndarray, episodes: Sequence[FinishedEpisode]
    ) -> tuple[np.ndarray, Info]:
        """The penalty on truncated episodes, also reported as ``info["eos_penalty"]``."""
        change = np.array([self.penalty if e.truncated else 0.0 for e in episodes])
        return scores + change, {"eos_penalty": change}


class LengthPenalty(RewardTerm):
    """Counter verbosity with the completion's length ``L`` (tokens, EOS excluded).

    ``mode="subtract"`` takes ``alpha·L`` off the score; ``"divide"`` makes it ``score/max(L, 1)``.
    The change is reported as ``info["length_penalty"]``.
    """

    name = "length_penalty"

    def __init__(self, alpha: float = 0.01, mode: Literal["subtract", "divide"] = "subtract"):
        if mode not in ("subtract", "divide"):
            raise ValueError(f"mode must be 'subtract' or 'divide', got {mode!r}.")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}.")
        self.alpha, self.mode = float(alpha), mode

    def terminal(
        self, scores: np.ndarray, episodes: Sequence[FinishedEpisode]
    ) -> tuple[np.ndarray, Info]:
        """The score after the length term."""
        lengths = np.array([len(e.completion_ids) for e in episodes], dtype=np.float64)
        if self.mode == "subtract":
            new = scores - self.alpha * lengths
        else:
            new = scores / np.maximum(lengths, 1.0)
        return new, {"length_penalty": new - scores}


class KLTerm(RewardTerm):
    """A KL penalty ``−kl_coef·kl_t`` against a further frozen reference, at every token.

    log π_θ is the env's (handed over or from a bound policy), so it must be known. Info:
    ``<name>_kl`` and ``<name>_ref_logprob``.

    Args:
        model: the frozen reference (eval mode, no grad; followed by the core).
        kl_coef: its β, >= 0.
        estimator: ``"k1"`` or ``"k3"``.
        name: the term's name and info prefix.
    """

    def __init__(
        self, model: Any, kl_coef: float, estimator: str = "k1", name: str = "extra"
    ) -> None:
        if kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {kl_coef}.")
        self.model = model.eval().requires_grad_(False)
        self.kl_coef, self.estimator, self.name = float(kl_coef), check_estimator(estimator), name

    def token(
        self, actions: np.ndarray, policy_logprob: np.ndarray, logits: torch.Tensor | None
    ) -> tuple[np.ndarray | None, Info]:
        """``−kl_coef·kl_t`` against this reference."""
        assert logits is not None
        if np.isnan(policy_logprob).any():
            raise RuntimeError(
                f"the {self.name!r} KL term needs log π_θ: hand it over with "
                "set_policy_logprob(s)(...) before each step or bind policy_model=<the policy>."
            )
        ref = token_logprobs(logits, actions)
        kl = kl_term(policy_logprob, ref, self.estimator)
        return -self.kl_coef * kl, {f"{self.name}_kl": kl, f"{self.name}_ref_logprob": ref}


class TopPMask(RewardTerm):
    """Allows only the top-p tokens of a frozen mask model (NLPO); pays nothing.

    Args:
        model: a causal LM sharing the policy's vocabulary (followed by the core).
        top_p: the probability mass of the allowed set, in (0, 1].
    """

    name = "mask"

    def __init__(self, model: Any, top_p: float = 0.9) -> None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        self.model = model.eval().requires_grad_(False)
        self.top_p = float(top_p)

    def masks(self, logits: torch.Tensor | None, valid_vocab: int) -> np.ndarray | None:
        """The top-p set of the mask model's next-token distribution."""
        assert logits is not None
        return top_p_mask_of(logits, self.top_p, valid_vocab)

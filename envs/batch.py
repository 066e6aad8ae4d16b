"""The one implementation of the episode logic: N text-generation episodes stepped together.

:class:`TextGenerationBatch` is not an env. The three faces (:class:`TextGenerationEnv`,
:class:`TextGenerationVectorEnv`, :class:`TextGenerationVecEnv`) hold one and only translate
its arrays into their API. Every step costs one cached forward of the reference model (and of
the bound policy / mask model when there is one) for all N rows together, restarts included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rlhf_gym.envs.models import EnvModels
from rlhf_gym.envs.prompts import PromptTruncation, load_prompts, tokenize_prompts
from rlhf_gym.envs.rewards import (
    DEFAULT_KL_COEF,
    check_estimator,
    kl_term,
    score_completions,
    token_logprobs,
    token_reward,
    top_p_mask,
)
from rlhf_gym.lm.runner import CachedCausalLM
from rlhf_gym.reward_models.protocol import as_reward_source
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class FinishedEpisode:
    """What a face reports about an episode that ended on this step."""

    prompt: str
    prompt_ids: list[int]
    completion: str
    completion_ids: list[int]
    final_obs: dict[str, np.ndarray]
    eos_penalty: float
    score: float = 0.0  # the terminal reward term: source score + eos_penalty


@dataclass
class BatchStep:
    """Arrays of shape ``(N,)`` for one step of all rows, plus the episodes that ended."""

    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    score: np.ndarray
    kl: np.ndarray
    ref_logprob: np.ndarray
    policy_logprob: np.ndarray
    finished: dict[int, FinishedEpisode] = field(default_factory=dict)


class TextGenerationBatch:
    """N token-level text-generation episodes with batched, KV-cached reward terms.

    Args are those of :class:`rlhf_gym.envs.TextGenerationEnv` (see its docstring), plus
    ``num_envs``.
    """

    def __init__(
        self,
        num_envs: int,
        *,
        tokenizer: PreTrainedTokenizerBase,
        reference_model: PreTrainedModel,
        prompts: object,
        reward: object | None = None,
        policy_model: PreTrainedModel | None = None,
        max_prompt_tokens: int = 64,
        max_new_tokens: int = 32,
        kl_coef: float = DEFAULT_KL_COEF,
        kl_estimator: str = "k1",
        temperature: float = 1.0,
        missing_eos_penalty: float | None = None,
        mask_model: PreTrainedModel | None = None,
        mask_top_p: float = 0.9,
        device: str | torch.device = "auto",
        prompt_column: str = "prompt",
        prompt_truncation: PromptTruncation = "left",
    ) -> None:
        if num_envs < 1 or max_prompt_tokens < 1 or max_new_tokens < 1:
            raise ValueError("num_envs, max_prompt_tokens and max_new_tokens must all be >= 1.")
        self.num_envs = num_envs
        self.models = EnvModels(tokenizer, reference_model, policy_model, mask_model, device)
        self.tokenizer = tokenizer
        self.vocab_size = self.models.vocab_size
        self.eos_token_id = self.models.eos_token_id
        self.pad_token_id = self.models.pad_token_id
        self.max_prompt_tokens, self.max_new_tokens = max_prompt_tokens, max_new_tokens
        self.window = max_prompt_tokens + max_new_tokens
        self.kl_estimator = check_estimator(kl_estimator)
        self.set_kl_coef(kl_coef)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
        self.missing_eos_penalty = missing_eos_penalty
        self.mask_top_p = mask_top_p
        self.reward = None if reward is None else as_reward_source(reward)
        self.prompts = load_prompts(prompts, prompt_column)
        self.prompt_ids = tokenize_prompts(
            tokenizer, self.prompts, max_prompt_tokens, prompt_truncation
        )
        self.rngs = [np.random.default_rng() for _ in range(num_envs)]
        self.ids = np.full((num_envs, self.window), self.pad_token_id, dtype=np.int64)
        self.attention = np.zeros((num_envs, self.window), dtype=np.int64)
        self.prompt_len = np.zeros(num_envs, dtype=np.int64)
        self.gen_len = np.zeros(num_envs, dtype=np.int64)
        self.prompt_index = np.zeros(num_envs, dtype=np.int64)
        self.done = np.ones(num_envs, dtype=bool)  # a row needs a reset before its first step
        self._handover: np.ndarray | None = None
        self._runners: dict[str, CachedCausalLM] = {}
        self._logits: dict[str, torch.Tensor] = {}

    # ----------------------------------------------------------------- run-time settings
    @property
    def reference_model(self) -> PreTrainedModel:
        """The frozen reference model (eval mode, no grad)."""
        return self.models.reference

    def set_kl_coef(self, kl_coef: float) -> None:
        """Set β, the KL coefficient, for the following steps."""
        kl_coef = float(kl_coef)
        if not np.isfinite(kl_coef) or kl_coef < 0:
            raise ValueError(f"kl_coef must be a finite number >= 0, got {kl_coef}.")
        self.kl_coef = kl_coef

    def set_policy_logprobs(self, logprobs: np.ndarray | Sequence[float]) -> None:
        """Hand over ``log π_θ(a_t|s_t)`` of the actions the next step will receive (N,)."""
        array = np.asarray(logprobs, dtype=np.float64).reshape(-1)
        if array.shape != (self.num_envs,):
            raise ValueError(
                f"set_policy_logprobs expects shape ({self.num_envs},), got {np.shape(logprobs)}."
            )
        if not np.all(np.isfinite(array)) or np.any(array > 1e-6):
            raise ValueError("policy log-probs must be finite and <= 0 (log-probabilities).")
        self._handover = array

    def load_reference_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Replace the reference weights (periodic refresh) and rebuild its cache for live rows."""
        self.models.reference.load_state_dict(state_dict)
        if "ref" in self._runners:
            histories = self._runners["ref"].histories()
            self._runners["ref"] = self._new_runner(self.models.reference)
            resets = [bool(h) for h in histories]
            self._logits["ref"] = self._runners["ref"].advance(histories, resets).logits

    # ----------------------------------------------------------------- episodes
    def observation(self) -> dict[str, np.ndarray]:
        """Copies of the ``(N, W)`` token buffer and attention mask."""
        return {"input_ids": self.ids.copy(), "attention_mask": self.attention.copy()}

    def reset_rows(self, rows: Sequence[int]) -> None:
        """Start a new episode in each of ``rows``, drawing its prompt from that row's rng."""
        rows = sorted(set(int(r) for r in rows))
        if len(rows) == self.num_envs:
            self._runners = {}  # a fresh cache: a full reset is bit-for-bit reproducible
        tokens: list[list[int]] = [[] for _ in range(self.num_envs)]
        for row in rows:
            tokens[row] = self._start_episode(row)
        self._advance(tokens, [bool(t) for t in tokens])

    def row_texts(self) -> list[str]:
        """Each row's prompt and tokens so far, decoded (the vector faces' ``render``)."""
        return [
            self.tokenizer.decode(self.ids[r, self.attention[r] == 1].tolist())
            for r in range(self.num_envs)
        ]

    def action_masks(self) -> np.ndarray:
        """``(N, V)`` bools: the top-p set of the mask model, or every real token without one."""
        if "mask" in self._logits:
            return top_p_mask(self._logits["mask"], self.mask_top_p, len(self.tokenizer))
        masks = np.ones((self.num_envs, self.vocab_size), dtype=bool)
        masks[:, len(self.tokenizer) :] = False
        return masks

    def step(self, actions: np.ndarray | Sequence[int], autoreset: bool) -> BatchStep:
        """Apply one token per row, compute the reward terms, and restart ended rows if asked."""
        actions = self._check_actions(actions)
        if not self._runners:
            raise RuntimeError("step() called before reset(); call reset() first.")
        ref_lp = token_logprobs(self._logits["ref"], actions)
        policy_lp = self._policy_logprobs(actions)
        kl = kl_term(policy_lp, ref_lp, self.kl_estimator)
        rows = np.arange(self.num_envs)
        self.ids[rows, self.prompt_len + self.gen_len] = actions
        self.attention[rows, self.prompt_len + self.gen_len] = 1
        self.gen_len += 1
        terminated = actions == self.eos_token_id
        truncated = ~terminated & (self.gen_len >= self.max_new_tokens)
        ended = np.flatnonzero(terminated | truncated)
        finished = self._finish(ended, truncated)
        score = np.zeros(self.num_envs)
        for row, episode in finished.items():
            score[row] = episode.score
        rewards = token_reward(kl, self.kl_coef, score)
        tokens = [[int(a)] for a in actions]
        for row in ended:
            tokens[row] = self._start_episode(row) if autoreset else []
            self.done[row] = not autoreset
        self._advance(tokens, [bool(autoreset and r in finished) for r in range(self.num_envs)])
        return BatchStep(rewards, terminated, truncated, score, kl, ref_lp, policy_lp, finished)

    # ----------------------------------------------------------------- internals
    def _start_episode(self, row: int) -> list[int]:
        index = int(self.rngs[row].integers(len(self.prompt_ids)))
        ids = self.prompt_ids[index]
        self.prompt_index[row], self.prompt_len[row], self.gen_len[row] = index, len(ids), 0
        self.ids[row] = self.pad_token_id
        self.ids[row, : len(ids)] = ids
        self.attention[row] = 0
        self.attention[row, : len(ids)] = 1
        self.done[row] = False
        return list(ids)

    def _check_actions(self, actions: np.ndarray | Sequence[int]) -> np.ndarray:
        array = np.asarray(actions).reshape(-1)
        if array.shape != (self.num_envs,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"expected {self.num_envs} integer token id(s), got {np.asarray(actions)!r}."
            )
        bad = (array < 0) | (array >= self.vocab_size)
        if bad.any():
            raise ValueError(
                f"action {int(array[bad][0])} is outside the action space "
                f"Discrete({self.vocab_size})."
            )
        if self.done.any():
            raise RuntimeError(
                "step() called on an episode that has ended (or was never started); call reset()."
            )
        return array.astype(np.int64)

    def _policy_logprobs(self, actions: np.ndarray) -> np.ndarray:
        handover, self._handover = self._handover, None
        if handover is not None:
            return handover
        if "policy" in self._logits:
            return token_logprobs(self._logits["policy"], actions)
        if self.kl_coef != 0:
            raise RuntimeError(
                f"kl_coef={self.kl_coef} needs log π_θ of each action, and the env has none. "
                "Either call set_policy_logprob(s)(...) with the act-time log-probs right before "
                "each step, or pass policy_model=<the policy> at construction (or set kl_coef=0)."
            )
        return np.full(self.num_envs, np.nan)

    def _finish(self, ended: np.ndarray, truncated: np.ndarray) -> dict[int, FinishedEpisode]:
        episodes: dict[int, FinishedEpisode] = {}
        for row in ended:
            start, stop = self.prompt_len[row], self.prompt_len[row] + self.gen_len[row]
            completion_ids = [int(t) for t in self.ids[row, start:stop] if t != self.eos_token_id]
            index = self.prompt_index[row]
            eos_penalty = (
                float(self.missing_eos_penalty)
                if truncated[row] and self.missing_eos_penalty is not None
                else 0.0
            )
            episodes[int(row)] = FinishedEpisode(
                prompt=self.prompts[index],
                prompt_ids=list(self.prompt_ids[index]),
                completion=self.tokenizer.decode(completion_ids, skip_special_tokens=True),
                completion_ids=completion_ids,
                final_obs={
                    "input_ids": self.ids[row].copy(),
                    "attention_mask": self.attention[row].copy(),
                },
                eos_penalty=eos_penalty,
            )
        rows = list(episodes)
        scores = score_completions(
            self.reward,
            [episodes[r].prompt for r in rows],
            [episodes[r].completion for r in rows],
            [episodes[r].prompt_ids for r in rows],
            [episodes[r].completion_ids for r in rows],
        )
        for row, value in zip(rows, scores, strict=True):
            episodes[row].score = float(value) + episodes[row].eos_penalty
        return episodes

    def _new_runner(self, model: PreTrainedModel) -> CachedCausalLM:
        return CachedCausalLM(model, self.num_envs, temperature=self.temperature)

    @torch.no_grad()
    def _advance(self, tokens: list[list[int]], reset: list[bool]) -> None:
        for name, model in self.models.runners().items():
            if name not in self._runners:
                self._runners[name] = self._new_runner(model)
            self._logits[name] = self._runners[name].advance(tokens, reset).logits

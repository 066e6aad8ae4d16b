"""The one implementation of the episode logic: N text-generation episodes stepped together.

:class:`TextGenerationBatch` is not an env. The three faces (:class:`TextGenerationEnv`,
:class:`TextGenerationVectorEnv`, :class:`TextGenerationVecEnv`) hold one and only translate
its arrays into their API. A step costs one cached forward of each model that follows the rows
(reference, bound policy, term models) for all N together, restarts included (see ``step``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from rlhf_gym.envs.episode_state import (
    episode_state,
    finished_episode,
    restore_episode_state,
    token_histories,
)
from rlhf_gym.envs.groups import init_groups, restart_ended, start_rows
from rlhf_gym.envs.models import EnvModels, freeze
from rlhf_gym.envs.prompts import PromptTruncation, load_prompts, tokenize_prompts
from rlhf_gym.envs.rewards import (
    DEFAULT_KL_COEF,
    check_estimator,
    check_logprobs,
    kl_logprobs,
    kl_part,
)
from rlhf_gym.envs.terms import (
    FinishedEpisode,
    MissingEOSPenalty,
    RewardTerm,
    ScoreTerm,
    TopPMask,
    score_episodes,
)
from rlhf_gym.lm.loading import load_tokenizer
from rlhf_gym.lm.runner import CachedCausalLM

KLReward = Literal["kl", "ref_logprob"]
KL_REWARDS: tuple[str, ...] = ("kl", "ref_logprob")


@dataclass
class BatchStep:
    """Arrays of shape ``(N,)`` for one step of all rows, plus the episodes that ended.

    ``token_info`` holds the per-step info arrays of every row: ``score``, ``kl``,
    ``ref_logprob``, ``policy_logprob`` and those of the token terms.
    """

    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    token_info: dict[str, np.ndarray]
    finished: dict[int, FinishedEpisode] = field(default_factory=dict)


class TextGenerationBatch:
    """N token-level text-generation episodes with batched, KV-cached reward terms.

    Args are those of :class:`rlhf_gym.envs.TextGenerationEnv` (see its docstring), plus
    ``num_envs``, ``group_size`` and ``rounds``.

    **Rounds** (``rounds=True``, implied by prompt groups, ``group_size`` k > 1, whose adjacent
    rows of k share a prompt): a row that ends early waits (its actions ignored, its models'
    forwards without it) until the round's last row ends, and then every row restarts
    (:mod:`rlhf_gym.envs.groups`, ``docs/grpo_rloo.md``).
    """

    def __init__(
        self,
        num_envs: int,
        *,
        tokenizer: Any,
        reference_model: Any,
        prompts: object,
        reward: object | None = None,
        policy_model: Any = None,
        max_prompt_tokens: int = 64,
        max_new_tokens: int = 32,
        kl_coef: float = DEFAULT_KL_COEF,
        kl_estimator: str = "k1",
        kl_reward: KLReward = "kl",
        temperature: float = 1.0,
        missing_eos_penalty: float | None = None,
        mask_model: Any = None,
        mask_top_p: float = 0.9,
        terms: Sequence[RewardTerm] = (),
        device: str | torch.device = "auto",
        prompt_column: str = "prompt",
        prompt_truncation: PromptTruncation = "left",
        group_size: int = 1,
        rounds: bool = False,
    ) -> None:
        if num_envs < 1 or max_prompt_tokens < 1 or max_new_tokens < 1:
            raise ValueError("num_envs, max_prompt_tokens and max_new_tokens must all be >= 1.")
        if kl_reward not in KL_REWARDS:
            raise ValueError(f"kl_reward must be one of {KL_REWARDS}, got {kl_reward!r}.")
        self.num_envs = num_envs
        tokenizer = load_tokenizer(tokenizer)
        self.models = EnvModels(tokenizer, reference_model, policy_model, device)
        self.tokenizer = tokenizer
        self.vocab_size = self.models.vocab_size
        self.eos_token_id = self.models.eos_token_id
        self.stop_ids = self.models.stop_ids
        self._is_stop = np.isin(np.arange(max(self.vocab_size, *self.stop_ids) + 1), self.stop_ids)
        self.pad_token_id = self.models.pad_token_id
        self.max_prompt_tokens, self.max_new_tokens = max_prompt_tokens, max_new_tokens
        self.window = max_prompt_tokens + max_new_tokens
        self.kl_estimator = check_estimator(kl_estimator)
        self.kl_reward = kl_reward
        self.set_kl_coef(kl_coef)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
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
        self.returns = np.zeros(num_envs)  # the running episode return of each row
        self.done = np.ones(num_envs, dtype=bool)  # a row needs a reset before its first step
        init_groups(self, group_size, rounds)
        self._handover: dict[str, np.ndarray] = {}  # log-probs handed over for the next step
        self.reference_handed_over = False
        self._runners: dict[str, CachedCausalLM] = {}
        self._logits: dict[str, torch.Tensor] = {}
        self._pending: tuple[list[list[int]], list[bool]] | None = None  # see step()
        self.terms: list[RewardTerm] = []
        default_terms = [
            ScoreTerm(reward) if reward is not None else None,
            MissingEOSPenalty(missing_eos_penalty) if missing_eos_penalty is not None else None,
            TopPMask(mask_model, mask_top_p) if mask_model is not None else None,
        ]
        for term in [t for t in default_terms if t is not None] + list(terms):
            self.add_term(term)

    # ----------------------------------------------------------------- run-time settings
    @property
    def reference_model(self) -> torch.nn.Module:
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
        self._handover["policy"] = check_logprobs(logprobs, self.num_envs)

    def hand_over_reference(self, flag: bool) -> None:
        """Take ``log π_ref(a_t|s_t)`` from the agent (True) instead of running the reference.

        On, the env runs no reference forward and each step needs :meth:`set_reference_logprobs`
        first (an agent whose act forward runs the reference turns it on). Caches are rebuilt.
        """
        if bool(flag) != self.reference_handed_over:
            self.reference_handed_over = bool(flag)
            self.rebuild_caches()  # without the reference's runner (on), or with it again (off)

    def set_reference_logprobs(self, logprobs: np.ndarray | Sequence[float]) -> None:
        """Hand over ``log π_ref(a_t|s_t)`` of the next step's actions (N,), once handed over."""
        self._handover["ref"] = check_logprobs(logprobs, self.num_envs, "set_reference_logprobs")

    def load_reference_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Replace the reference weights (periodic refresh) and rebuild its cache for live rows."""
        self._flush()
        self.models.reference.load_state_dict(state_dict)
        self._runners.pop("ref", None)
        self._catch_up()

    def add_term(self, term: RewardTerm, replace: bool = False) -> None:
        """Compose ``term`` into the reward (see :mod:`rlhf_gym.envs.terms`).

        Args:
            term: the term; its ``model`` (if any) is frozen, moved to the env's device and
                followed for every row from now on.
            replace: put it in place of the term of the same name (appended when there is
                none); without it a name already taken is an error.
        """
        names = [t.name for t in self.terms]
        if term.name in names and not replace:
            raise ValueError(
                f"the env already has a {term.name!r} term; pass replace=True to swap it, or give "
                "the new term another name."
            )
        self._flush()
        term.bind_tokenizer(self.tokenizer)
        if term.model is not None:
            self.models.check_vocab(term.model, f"the {term.name!r} term's model")
            term.model = freeze(term.model, self.models.device)
        if term.name in names:
            self._runners.pop(f"term:{term.name}", None)
            self.terms[names.index(term.name)] = term
        else:
            self.terms.append(term)
        self._catch_up()

    # ----------------------------------------------------------------- state (checkpoints)
    def get_state(self) -> dict[str, Any]:
        """The episodes: token buffers, prompts, lengths, returns, row generators and β."""
        return episode_state(self)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s episodes (same sizes and prompts), then rebuild caches."""
        restore_episode_state(self, state)
        self._handover = {}
        self.rebuild_caches()

    def rebuild_caches(self) -> None:
        """Re-encode each live row's tokens in fresh caches, as after :meth:`set_state`.

        The agent calls it at every rollout start, so a resumed run and one never interrupted
        compute the same floats.
        """
        self._runners, self._logits, self._pending = {}, {}, None
        self._catch_up()

    # ----------------------------------------------------------------- episodes
    def observation(self) -> dict[str, np.ndarray]:
        """Copies of the ``(N, W)`` token buffer and attention mask."""
        return {"input_ids": self.ids.copy(), "attention_mask": self.attention.copy()}

    def reset_rows(self, rows: Sequence[int]) -> None:
        """Start a new episode in each of ``rows``, drawing its prompt from that row's rng."""
        rows = sorted(set(int(r) for r in rows))
        if len(rows) == self.num_envs:  # a fresh cache: a full reset is bit-for-bit reproducible
            self._runners, self._pending = {}, None
        self._flush()
        tokens = start_rows(self, rows)
        self._advance(tokens, [bool(t) for t in tokens])

    def row_texts(self) -> list[str]:
        """Each row's prompt and tokens so far, decoded (the vector faces' ``render``)."""
        return [
            self.tokenizer.decode(self.ids[r, self.attention[r] == 1].tolist())
            for r in range(self.num_envs)
        ]

    def action_masks(self) -> np.ndarray:
        """``(N, V)`` bools: every real token, narrowed by each masking term (NLPO top-p)."""
        self._flush()
        masks = np.ones((self.num_envs, self.vocab_size), dtype=bool)
        masks[:, len(self.tokenizer) :] = False
        for term in self.terms:
            allowed = term.masks(self._term_logits(term), len(self.tokenizer))
            if allowed is not None:
                masks &= allowed
        return masks

    def step(self, actions: np.ndarray | Sequence[int], autoreset: bool) -> BatchStep:
        """Apply one token per row, compute the reward terms, and restart ended rows if asked.

        When an episode ended, the forward feeding this step's tokens and new prompts waits until
        logits are next needed: a full reset or a cache rebuild right after never runs it.
        """
        actions = self._check_actions(actions)
        if not self._runners and self._followed():
            raise RuntimeError("step() called before reset(); call reset() first.")
        self._flush()
        live = ~self.waiting  # a waiting row's action is ignored: a no-op step
        rewards, info = self._token_rewards(actions)
        if not live.all():
            rewards = np.where(live, rewards, 0.0)
            info = {key: np.where(live, values, 0.0) for key, values in info.items()}
        rows = np.flatnonzero(live)
        at = self.prompt_len[rows] + self.gen_len[rows]
        self.ids[rows, at], self.attention[rows, at] = actions[rows], 1
        self.gen_len[rows] += 1
        terminated = live & self._is_stop[actions]  # any stop id ends it (chat: several)
        truncated = live & ~terminated & (self.gen_len >= self.max_new_tokens)
        ended = np.flatnonzero(terminated | truncated)
        finished = self._finish(ended, truncated)
        info["score"] = np.zeros(self.num_envs)
        info["score"][list(finished)] = [episode.score for episode in finished.values()]
        if self.rounds:  # the episode each row stepped, and whether it only waited
            info.update(group=self.group.astype(np.float64), waiting=(~live).astype(np.float64))
        rewards = rewards + info["score"]
        self.returns += rewards
        for row, episode in finished.items():
            episode.episode_return, self.returns[row] = float(self.returns[row]), 0.0
        if not len(ended):  # the common step: a token per live row (the waiting ones are retired)
            self._advance_one(actions)
        else:
            tokens = [[int(a)] if live[r] else [] for r, a in enumerate(actions)]
            self._pending = (tokens, restart_ended(self, ended, tokens, autoreset).tolist())
        return BatchStep(rewards, terminated, truncated, info, finished)

    # ----------------------------------------------------------------- internals
    def _token_rewards(self, actions: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The per-token part of the reward: the env's own KL term, then the token terms."""
        handed, self._handover = self._handover, {}
        policy_lp, ref_lp = kl_logprobs(handed, self._logits, actions, self.kl_coef, self.kl_reward)
        rewards, info = kl_part(policy_lp, ref_lp, self.kl_coef, self.kl_reward, self.kl_estimator)
        for term in self.terms:
            paid, term_info = term.token(actions, policy_lp, self._term_logits(term))
            if paid is not None:
                rewards = rewards + paid
            info.update(term_info)
        return rewards, info

    def _start_episode(self, row: int, index: int | None = None) -> list[int]:
        """Put a prompt (``index``, else one drawn from the row's generator) in ``row``."""
        if index is None:
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
        if array.shape != (self.num_envs,) or array.dtype.kind not in "iu":  # integer ids
            raise ValueError(
                f"expected {self.num_envs} integer token id(s), got {np.asarray(actions)!r}."
            )
        if array.min() < 0 or array.max() >= self.vocab_size:
            bad = (array < 0) | (array >= self.vocab_size)
            raise ValueError(
                f"action {int(array[bad][0])} is outside the action space "
                f"Discrete({self.vocab_size})."
            )
        if self.done.any():
            raise RuntimeError(
                "step() called on an episode that has ended (or was never started); call reset()."
            )
        return array.astype(np.int64)

    def _finish(self, ended: np.ndarray, truncated: np.ndarray) -> dict[int, FinishedEpisode]:
        """Build the ended rows' episodes and run the terminal terms over all of them at once."""
        if not len(ended):
            return {}
        episodes = {int(row): finished_episode(self, row, bool(truncated[row])) for row in ended}
        score_episodes(self.terms, list(episodes.values()))
        return episodes

    def _followed(self) -> dict[str, torch.nn.Module]:
        """Every model that follows every row's tokens, by runner name (a handed-over one not)."""
        reference = None if self.reference_handed_over else self.models.reference
        models = {"ref": reference, "policy": self.models.policy}
        models.update({f"term:{t.name}": t.model for t in self.terms})
        return {name: model for name, model in models.items() if model is not None}

    def _term_logits(self, term: RewardTerm) -> torch.Tensor | None:
        return self._logits.get(f"term:{term.name}")

    def _new_runner(self, model: torch.nn.Module) -> CachedCausalLM:
        return CachedCausalLM(model, self.num_envs, temperature=self.temperature)

    @torch.no_grad()
    def _advance(self, tokens: list[list[int]], reset: list[bool]) -> None:
        for name, model in self._followed().items():
            if name not in self._runners:
                self._runners[name] = self._new_runner(model)
            self._logits[name] = self._runners[name].advance(tokens, reset).logits

    def _flush(self) -> None:
        """Run the forward a step left pending (see :meth:`step`)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._advance(*pending)

    @torch.no_grad()
    def _advance_one(self, actions: np.ndarray) -> None:
        """Feed every row its action: the per-token step, no list of tokens per row."""
        ids = torch.from_numpy(actions)
        for name in self._followed():  # each has a runner: reset and _catch_up made them
            self._logits[name] = self._runners[name].advance_one(ids).logits

    @torch.no_grad()
    def _catch_up(self) -> None:
        """Give a model that starts following mid-episode the live rows' tokens; retire the rest."""
        if self.done.all():
            return  # nothing is live (before the first reset, or every episode ended)
        histories = token_histories(self)
        over = np.flatnonzero(self.done | self.waiting)
        for name, model in self._followed().items():
            if name not in self._runners:
                self._runners[name] = self._new_runner(model)
                self._runners[name].retire(over)
                resets = [bool(h) for h in histories]
                self._logits[name] = self._runners[name].advance(histories, resets).logits

"""The single-episode Gymnasium face of the token-level text-generation MDP."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from rlhf_gym.envs.batch import BatchStep, TextGenerationBatch
from rlhf_gym.envs.face import BatchFace
from rlhf_gym.envs.terms import FinishedEpisode


def token_observation_space(vocab_size: int, window: int) -> spaces.Dict:
    """``Dict(input_ids=Box(0, V-1, (W,), int64), attention_mask=Box(0, 1, (W,), int64))``."""
    return spaces.Dict(
        {
            "input_ids": spaces.Box(0, vocab_size - 1, (window,), dtype=np.int64),
            "attention_mask": spaces.Box(0, 1, (window,), dtype=np.int64),
        }
    )


def step_info(result: BatchStep, row: int) -> dict[str, Any]:
    """The ``info`` of one row: the reward terms, plus the episode's text when it ended.

    Numbers are numpy float64 scalars, so collectors that allocate storage from info dtypes see
    one fixed type; the episode's text and token ids (lists of int) come at its end.
    """
    info: dict[str, Any] = {key: np.float64(v[row]) for key, v in result.token_info.items()}
    episode = result.finished.get(row)
    if episode is not None:
        info.update(episode_info(episode))
    return info


def episode_info(episode: FinishedEpisode) -> dict[str, Any]:
    """What the info of an episode's last step adds: its text, ids and terminal terms."""
    return {
        "prompt": episode.prompt,
        "prompt_ids": list(episode.prompt_ids),
        "completion": episode.completion,
        "completion_ids": list(episode.completion_ids),
        **{key: np.float64(value) for key, value in episode.info.items()},
    }


class TextGenerationEnv(BatchFace, gym.Env[dict[str, np.ndarray], np.int64]):
    """Write a completion to a prompt one token at a time, rewarded as in RLHF.

    ## Description
    Each episode draws a prompt; every step appends one token (the action) to it. The reward
    is the RLHF objective split per token (docs/objective.md): a KL penalty against a frozen
    reference model on every token and a reward-model score on the last one. The env never
    trains anything and owns no optimiser.

    ## Action Space
    ``Discrete(V)``: the next token id, V = the models' vocabulary size (ids at or above
    ``len(tokenizer)``, if the model pads its vocabulary, are masked by :meth:`action_masks`).

    ## Observation Space
    ``Dict(input_ids=Box(0, V-1, (W,), int64), attention_mask=Box(0, 1, (W,), int64))`` with
    ``W = max_prompt_tokens + max_new_tokens``: prompt then generated tokens, left-aligned,
    pad after, mask 1 on real tokens.

    ## Rewards
    ``r_t = −β·kl_t + [t=T]·score(x, y)`` with ``kl_reward="kl"`` (the default), where
    ``kl_t = log π_θ(a_t|s_t) − log π_ref(a_t|s_t)`` (``"k1"``) or ``(ρ−1) − log ρ`` with
    ``ρ = π_ref/π_θ`` (``"k3"``); or ``r_t = β·log π_ref(a_t|s_t) + [t=T]·score(x, y)`` with
    ``kl_reward="ref_logprob"``, for learners the env cannot see: the KL-regularised objective
    then equals the expected return plus ``β·Σ_t H(π(·|s_t))``, the learner's entropy bonus
    with coefficient β (docs/objective.md). Log-probs use logits divided by ``temperature``.
    ``score`` is the terminal terms' total: the reward source's score of (prompt, completion),
    plus ``missing_eos_penalty`` when the episode was truncated without EOS, plus any term a
    wrapper added (:mod:`rlhf_gym.envs.terms`).
    **Where log π_θ comes from** (``kl_reward="kl"``): call :meth:`set_policy_logprob` with the
    act-time log-prob before a step (that step only); otherwise a ``policy_model`` bound at
    construction is run by the env itself; with neither, β must be 0, else ``step`` raises.
    ``info`` carries numpy float64 ``"score"`` (0.0 until the end), ``"ref_logprob"``, and
    ``"kl"`` and ``"policy_logprob"`` when log π_θ is known; at the end also ``"prompt"``,
    ``"prompt_ids"`` (list of int), ``"completion"`` (text without EOS), ``"completion_ids"`` and
    ``"eos_penalty"``, plus what the terms add (float64).

    ## Starting State
    A prompt drawn uniformly with ``self.np_random``. Prompts longer than
    ``max_prompt_tokens`` keep their last ``max_prompt_tokens`` tokens (one warning), or raise
    with ``prompt_truncation="error"``. The reward source is given the full prompt text.

    ## Episode End
    Terminated when the action is any stop id (EOS, and every id in the model's
    ``generation_config.eos_token_id``); truncated after ``max_new_tokens`` tokens. Stepping an
    ended episode raises until :meth:`reset`.

    ## Arguments
    tokenizer: the policy's tokenizer (EOS required; pad may be absent, then EOS pads).
    reference_model: frozen reference π_ref (moved to ``device``, eval, no grad).
    prompts: list of strings, a ``datasets.Dataset`` (column ``prompt_column``) or the toy world.
    reward: a :class:`~rlhf_gym.reward_models.protocol.RewardSource` or callable
    ``f(prompts, completions)``; None scores 0 (add one with ``RewardScoreWrapper``).
    reference_model, tokenizer, policy_model may also be hub names or folders.
    policy_model: optional policy the env scores actions with (not moved, not frozen; never a
    frozen copy of the reference, which would price every action at KL 0).
    max_prompt_tokens, max_new_tokens: window sizes. kl_coef: β (``set_kl_coef`` changes it).
    kl_estimator: ``"k1"`` or ``"k3"``. kl_reward: ``"kl"`` or ``"ref_logprob"`` (above).
    temperature: the sampling temperature.
    missing_eos_penalty: float added to the score of truncated episodes, or None.
    mask_model, mask_top_p: optional NLPO mask model and its top-p (see :meth:`action_masks`).
    terms: more reward terms (:mod:`rlhf_gym.envs.terms`), as the wrappers add them.
    device: ``"auto"`` = cuda when available. render_mode: None or ``"ansi"``.
    rounds: taken for the vector faces' sake; with one row each episode is its own round, so
    it only adds ``info["waiting"]`` (always 0) and ``info["group"]`` (the episode's id).

    ## Version History
    * v0: initial version; ``kl_reward``, ``terms`` and numpy-typed info added since.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, *, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}.")
        self.render_mode = render_mode
        self.batch = TextGenerationBatch(1, **kwargs)
        self.observation_space = token_observation_space(self.batch.vocab_size, self.batch.window)
        self.action_space = spaces.Discrete(self.batch.vocab_size)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw a prompt (from ``self.np_random``) and start an episode."""
        super().reset(seed=seed)
        self.batch.rngs[0] = self.np_random
        self.batch.reset_rows([0])
        obs = self.batch.observation()
        return {k: v[0] for k, v in obs.items()}, {
            "prompt": self.batch.prompts[self.batch.prompt_index[0]]
        }

    def step(
        self, action: int | np.integer
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Append one token; see the class docstring for the reward and ``info``."""
        if not np.issubdtype(np.asarray(action).dtype, np.integer):
            raise ValueError(f"action must be an integer token id, got {action!r}.")
        result = self.batch.step(np.asarray([action]), autoreset=False)
        obs = {k: v[0] for k, v in self.batch.observation().items()}
        info = step_info(result, 0)
        return (
            obs,
            float(result.rewards[0]),  # Gymnasium's contract: a Python float
            bool(result.terminated[0]),
            bool(result.truncated[0]),
            info,
        )

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue a saved episode; ``np_random`` becomes its restored generator."""
        self.batch.set_state(state)
        self.np_random = self.batch.rngs[0]

    def set_policy_logprob(self, logprob: float) -> None:
        """Hand over ``log π_θ`` of the action the next :meth:`step` receives (that step only)."""
        self.batch.set_policy_logprobs([logprob])

    def set_reference_logprob(self, logprob: float) -> None:
        """Hand over ``log π_ref`` of the next step's action (reference handed over: True)."""
        self.batch.set_reference_logprobs([logprob])

    def action_masks(self) -> np.ndarray:
        """``(V,)`` bools for MaskablePPO: the mask model's top-p set, or all real tokens."""
        return self.batch.action_masks()[0]

    def render(self) -> str | None:
        """``"ansi"``: the prompt and the completion so far as text."""
        if self.render_mode != "ansi":
            return None
        b = self.batch
        prompt = b.tokenizer.decode(b.ids[0, : b.prompt_len[0]].tolist())
        stop = b.prompt_len[0] + b.gen_len[0]
        completion = b.tokenizer.decode(b.ids[0, b.prompt_len[0] : stop].tolist())
        return f"{prompt} ▸ {completion}"

    def close(self) -> None:
        """Nothing to release; safe to call twice."""

"""The base of the critic-free group algorithms (GRPO, RLOO): rounds in, group advantages out.

:class:`LMGroupAlgorithm` derives from
:class:`~rlhf_gym.agents.common.on_policy.LMOnPolicyAlgorithm` and replaces what a value model
did: a rollout is one *round* of a grouped env (``group_size`` k >= 2; every row writes one
completion, the k rows of a group to the same prompt), its sequence rewards get group-relative
advantages (:mod:`rlhf_gym.agents.group.advantages`), and ``train()`` takes PPO's clipped ratio
per token with no value loss (:func:`~rlhf_gym.agents.group.losses.group_losses`). The policy
has no value head and no critic. A subclass names its advantage and its KL coefficient in the
loss. The maths: ``docs/grpo_rloo.md``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, TypeVar

import numpy as np
from rlhf_gym.agents.common.env_api import env_attr
from rlhf_gym.agents.common.on_policy import LMOnPolicyAlgorithm
from rlhf_gym.agents.common.rollouts import VectorStep
from rlhf_gym.agents.common.token_state import TokenCacheState
from rlhf_gym.agents.group.buffer import GroupRolloutBuffer, GroupRolloutBufferSamples
from rlhf_gym.agents.group.losses import group_losses
from rlhf_gym.agents.group.stats import group_reward_stats
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule

SelfGroup = TypeVar("SelfGroup", bound="LMGroupAlgorithm")


class LMGroupAlgorithm(LMOnPolicyAlgorithm):
    """A critic-free on-policy algorithm on prompt groups; subclasses set the advantage.

    Every other argument is :class:`LMOnPolicyAlgorithm`'s (``learning_rate``, ``seed``, ...);
    the value arguments (``gamma``, ``gae_lambda``, ``vf_coef``) are unused.

    Args:
        policy: ``"LMPolicy"``; built without a value head (``with_value=False``).
        env: a :class:`~rlhf_gym.envs.TextGenerationVecEnv` with ``group_size`` >= 2.
        n_steps: the round's step budget, >= the env's ``max_new_tokens`` (None: that).
        batch_size: completions per minibatch; per rank in a distributed run.
        n_epochs: passes over each round.
        clip_range: the ratio clip ε (a float or a schedule of the progress remaining).
    """

    #: Loss-side KL coefficient (GRPO's β); 0 when the KL is in the reward (RLOO).
    loss_kl_coef: ClassVar[str | None] = None
    rollout_buffer: GroupRolloutBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str,
        env: GymEnv,
        n_steps: int | None = None,
        batch_size: int = 8,
        n_epochs: int = 1,
        clip_range: float | Schedule = 0.2,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        if not kwargs.pop("episode_aligned", True):
            raise ValueError(f"{type(self).__name__} collects whole rounds: episode_aligned=True.")
        super().__init__(policy, env, n_steps=n_steps, _init_setup_model=False, **kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size counts completions and must be >= 1, got {batch_size}.")
        if self.whiten_rewards:
            raise ValueError("whiten_rewards is for GAE; group advantages are already relative.")
        self.batch_size, self.n_epochs, self.clip_range = batch_size, n_epochs, clip_range
        self._group_stats: dict[str, float] = {}
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def advantages(rewards: np.ndarray) -> np.ndarray:
        """``(G, k)`` sequence rewards to their ``(G, k)`` advantages."""
        raise NotImplementedError

    def _loss_beta(self) -> float:
        """The coefficient of the k3 KL term in the loss (0: none)."""
        return 0.0

    def _setup_model(self) -> None:
        if self.policy_kwargs.get("with_value", False) or self.policy_kwargs.get("critic"):
            raise ValueError(f"{type(self).__name__} has no value model: drop with_value/critic.")
        self.policy_kwargs["with_value"] = False
        group_size = self._check_group_env()
        self.rollout_buffer_class = GroupRolloutBuffer
        self.rollout_buffer_kwargs = {"advantages": self.advantages, "group_size": group_size}
        super()._setup_model()
        self.clip_range = FloatSchedule(self.clip_range)

    def _check_group_env(self) -> int:
        """The env's ``group_size``, after checking it makes groups; 2 without an env."""
        if self.env is None:
            return 2  # prediction only (loaded without an env): no rollout will use it
        group_size = int(env_attr(self.env, "group_size"))
        if group_size < 2:
            raise ValueError(
                f"{type(self).__name__} compares completions within a prompt group; build the "
                f"env with group_size >= 2 (it has {group_size})."
            )
        return group_size

    def _rank_settings(self) -> dict[str, float]:
        return {
            **super()._rank_settings(),
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
        }

    # ------------------------------------------------------------------ rollouts

    def _add_round_step(
        self,
        buffer: GroupRolloutBuffer,  # type: ignore[override]
        step: VectorStep,
        starts: np.ndarray,
        live: np.ndarray,
    ) -> None:
        """The base's step, plus the reference log-probs and group ids from the env's info."""
        buffer.add_step(
            self._last_obs, step.actions.reshape(-1, 1), step.rewards, starts, step.values,
            step.log_probs,
            ref_log_prob=np.array([info["ref_logprob"] for info in step.infos]),
            live=live,
            group=np.array([info["group"] for info in step.infos], dtype=np.int64),
        )  # fmt: skip

    def _finish_round(self, buffer: GroupRolloutBuffer, state: TokenCacheState) -> None:  # type: ignore[override]
        """Group advantages instead of GAE, and the round's group statistics."""
        buffer.finish_round()
        k = buffer.group_size
        self._group_stats = group_reward_stats(buffer.sequence_rewards.reshape(-1, k))

    # ------------------------------------------------------------------ update

    def train(self) -> None:
        """Epochs over minibatches of whole completions; then the bookkeeping of the base."""
        start = time.perf_counter()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        metrics: dict[str, list[float]] = {}
        for _epoch in range(self.n_epochs):
            for batch in self.rollout_buffer.get_sequences(self.batch_size, self._shuffle_rng):
                terms = self._train_minibatch(batch, clip_range)  # type: ignore[arg-type]
                for key, value in terms.items():
                    metrics.setdefault(key, []).append(value)
            self._n_updates += 1
        update = {k: float(np.mean(v)) for k, v in metrics.items()}
        self._after_update({**update, **self._group_stats}, start)

    def _train_minibatch(
        self, batch: GroupRolloutBufferSamples, clip_range: float
    ) -> dict[str, float]:
        """One gradient step; ranks weigh it by completions (the loss is a mean over them)."""
        log_prob, _, entropy = self.policy.evaluate_sequences(
            batch.input_ids, batch.attention_mask, batch.positions, batch.actions
        )
        loss, terms = group_losses(
            batch, log_prob, entropy, clip_range, self._loss_beta(), self.ent_coef
        )
        return self._gradient_step(loss, terms, weight=float(batch.actions.shape[0]))

    def learn(
        self: SelfGroup,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfGroup:
        """SB3's ``learn``, logged under the class name; each rollout is one round."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or type(self).__name__,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

"""PPO for language-model policies on :class:`rlhf_gym.envs.TextGenerationVecEnv`.

Like sb3-contrib's ``RecurrentPPO``, :class:`LMPPO` derives from an on-policy base
(:class:`~rlhf_gym.agents.common.on_policy.LMOnPolicyAlgorithm`, which collects the rollouts)
and owns only PPO's arguments, their schedules and ``train()``. The update evaluates whole
sequences: one teacher-forced forward per sequence per epoch
(:meth:`~rlhf_gym.agents.common.buffers.LMRolloutBuffer.get_sequences`), with the loss of
:func:`~rlhf_gym.agents.ppo.losses.ppo_losses`. The maths and the defaults: ``docs/ppo.md``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
from rlhf_gym.agents.common.buffers import LMRolloutBufferSamples
from rlhf_gym.agents.common.on_policy import LMOnPolicyAlgorithm
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.agents.ppo.losses import PPO_TERMS, ppo_losses
from rlhf_gym.distributed import all_reduce_max, is_distributed
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule

SelfLMPPO = TypeVar("SelfLMPPO", bound="LMPPO")


class LMPPO(LMOnPolicyAlgorithm):
    """PPO with an LM policy, sequence minibatches and an adaptive KL coefficient.

    Every other argument is :class:`LMOnPolicyAlgorithm`'s (``learning_rate``, ``n_steps``,
    ``gamma``, ``adaptive_kl``, ``kl_target``, ...), with RLHF defaults (docs/ppo.md). β is the
    env's ``kl_coef``.

    Args:
        policy: ``"LMPolicy"`` or :class:`LMActorCriticPolicy`; its ``policy_kwargs`` need
            ``model`` (name, path or model object of the SFT policy).
        env: a :class:`~rlhf_gym.envs.TextGenerationVecEnv`.
        batch_size: sequences per minibatch (not tokens); per rank in a distributed run.
        n_epochs: passes over each rollout.
        clip_range: the ratio clip ε (a float or a schedule of the progress remaining).
        clip_range_vf: the value clip, in reward units (None: no value clipping).
        target_kl: stop the epochs early when an epoch's approximate KL exceeds 1.5x this.
    """

    def __init__(
        self,
        policy: str | type[LMActorCriticPolicy],
        env: GymEnv,
        batch_size: int = 8,
        n_epochs: int = 4,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = 0.2,
        target_kl: float | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size counts sequences and must be >= 1, got {batch_size}.")
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.clip_range = clip_range
        self.clip_range_vf = clip_range_vf
        self.target_kl = target_kl
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.clip_range = FloatSchedule(self.clip_range)
        if self.clip_range_vf is not None:
            if isinstance(self.clip_range_vf, float | int):
                assert self.clip_range_vf > 0, (
                    "`clip_range_vf` must be positive; pass None to deactivate value clipping."
                )
            self.clip_range_vf = FloatSchedule(self.clip_range_vf)

    def _rank_settings(self) -> dict[str, float]:
        return {
            **super()._rank_settings(),
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
        }

    def train(self) -> None:
        """PPO epochs over sequence minibatches; then the KL controller and reference refresh."""
        start = time.perf_counter()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        progress = self._current_progress_remaining
        clip_range = self.clip_range(progress)  # type: ignore[operator]
        clip_vf = None if self.clip_range_vf is None else self.clip_range_vf(progress)  # type: ignore[operator]
        metrics: dict[str, list[float]] = {}
        steps = self._steps_per_epoch()
        for _epoch in range(self.n_epochs):
            epoch_kls = []
            for batch in self._minibatches(steps):
                terms = self._train_minibatch(batch, clip_range, clip_vf)
                for key, value in terms.items():
                    metrics.setdefault(key, []).append(value)
                epoch_kls.append(terms["policy/approxkl"])
            self._n_updates += 1
            if self.target_kl is not None and np.mean(epoch_kls) > 1.5 * self.target_kl:
                break
        self._after_update({k: float(np.mean(v)) for k, v in metrics.items()}, start)

    def _steps_per_epoch(self) -> int | None:
        """Distributed: the most minibatches any rank has, which every rank steps; else None."""
        if not is_distributed():
            return None
        mine = math.ceil(self.rollout_buffer.num_sequences / self.batch_size)
        return int(all_reduce_max([mine])[0])

    def _minibatches(self, steps: int | None) -> Iterator[LMRolloutBufferSamples | None]:
        """The rank's shuffled minibatches, then None up to ``steps`` (episodes end unevenly)."""
        batches = self.rollout_buffer.get_sequences(self.batch_size, self._shuffle_rng)
        if steps is None:
            return batches
        return itertools.islice(itertools.chain(batches, itertools.repeat(None)), steps)

    def _train_minibatch(
        self, batch: LMRolloutBufferSamples | None, clip_range: float, clip_vf: float | None
    ) -> dict[str, float]:
        """One gradient step on a minibatch of sequences; returns its logged terms.

        A None batch (distributed, this rank has no sequences left) adds no tokens to the step.
        """
        if batch is None:
            return self._gradient_step(None, dict.fromkeys(PPO_TERMS, 0.0), weight=0.0)
        log_prob, values, entropy = self.policy.evaluate_sequences(
            batch.input_ids, batch.attention_mask, batch.positions, batch.actions
        )
        loss, terms = ppo_losses(
            batch, log_prob, values, entropy, clip_range, clip_vf, self.vf_coef, self.ent_coef
        )
        return self._gradient_step(loss, terms, weight=float(batch.token_mask.sum()))

    def learn(
        self: SelfLMPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "LMPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfLMPPO:
        """SB3's ``OnPolicyAlgorithm.learn``, under this algorithm's log name (as PPO does)."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

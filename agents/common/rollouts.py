"""How an LM agent collects a rollout through ``env.step``: by rounds, or SB3's fixed steps.

:class:`RolloutMixin` is the rollout half of
:class:`~rlhf_gym.agents.common.on_policy.LMOnPolicyAlgorithm`. Each vector step is one cached
policy forward (``policy.act``), the act-time log-probs handed to the env, then ``env.step``.

- **Episode-aligned** (the default): one *round*. Every row starts an episode at the first step
  and writes exactly one; a row that finished waits outside the batch of every forward (the
  env's and the policy's) until the last one ends, and the env restarts every row in that
  step. The buffer holds N whole sequences; nothing is bootstrapped or carried over.
- **Fixed steps** (``episode_aligned=False``): SB3's ``n_steps`` per env; an ended row
  restarts at once and episodes run on across rollouts, bootstrapped where cut.

With a LoRA policy whose env has handed its reference over, the act forward also runs the
reference rows and its log-probs are handed to the env too
(:mod:`~rlhf_gym.agents.common.fused_reference`).

Either way a separate critic runs once per sequence after the rollout, before GAE.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
import torch
from rlhf_gym.agents.common.buffers import LMRolloutBuffer
from rlhf_gym.agents.common.env_api import env_call
from rlhf_gym.agents.common.fused_reference import rollout_state
from rlhf_gym.agents.common.sequence_values import bootstrap_values
from rlhf_gym.agents.common.stats import global_summary
from rlhf_gym.agents.common.token_state import TokenCacheState
from rlhf_gym.envs.episodes import EpisodeTracker
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv


class VectorStep(NamedTuple):
    """What one vector step of a rollout gives the buffer: the policy's act and the env's reply."""

    actions: np.ndarray
    values: torch.Tensor
    log_probs: torch.Tensor
    new_obs: Any
    rewards: np.ndarray
    dones: np.ndarray
    infos: list[dict[str, Any]]


class RolloutMixin:
    """``collect_rollouts`` and its steps, for :class:`LMOnPolicyAlgorithm` (see the module)."""

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: LMRolloutBuffer,  # type: ignore[override]
        n_rollout_steps: int,
    ) -> bool:
        """Fill the buffer through ``env.step``, one cached policy forward per vector step."""
        if self.episode_aligned:
            return self._collect_round(env, callback, rollout_buffer, n_rollout_steps)
        assert self._last_obs is not None and self.tracker is not None
        start = time.perf_counter()
        self.tracker.clear_finished()
        state = self._open_rollout(env, rollout_buffer, callback)
        dones = np.zeros(env.num_envs, dtype=bool)
        for _ in range(n_rollout_steps):
            step = self._act_and_step(env, state, self._last_episode_starts, callback)
            if step is None:
                return False
            dones = step.dones
            # no bootstrap on truncation: the episode is over and its score was paid
            rollout_buffer.add(
                self._last_obs,
                step.actions.reshape(-1, 1),
                step.rewards,  # type: ignore[arg-type]
                self._last_episode_starts,
                step.values,
                step.log_probs,  # type: ignore[arg-type]
            )
            self._last_obs, self._last_episode_starts = step.new_obs, dones  # type: ignore[assignment]
        rollout_buffer.close()
        last_values = bootstrap_values(
            self.policy, rollout_buffer, state, self._last_obs, dones, self.batch_size
        )
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self._close_rollout(start)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _collect_round(
        self, env: VecEnv, callback: BaseCallback, buffer: LMRolloutBuffer, budget: int
    ) -> bool:
        """One round: every row writes one whole episode; a finished row leaves the batch.

        The round counts its whole ``budget`` of steps, so ``learn(n_steps * n_envs * K)`` runs
        K rounds however early they end.
        """
        assert self._last_obs is not None
        if not env_call(env, "at_round_start"):
            raise RuntimeError(
                "the env is in the middle of a round; an episode-aligned rollout starts every row "
                "together. Reset it (learn(..., reset_num_timesteps=True)) and step it only via "
                "the agent."
            )
        start = time.perf_counter()
        self.tracker = EpisodeTracker(self.n_envs)  # rounds are whole: nothing carries over
        state = self._open_rollout(env, buffer, callback)
        starts = np.ones(env.num_envs, dtype=bool)
        ended = np.zeros(env.num_envs, dtype=bool)
        taken = 0
        while taken < budget and not ended.all():
            taken += 1
            step = self._act_and_step(env, state, starts, callback)
            if step is None:
                return False
            self._add_round_step(buffer, step, starts, live=~ended)
            state.retire(np.flatnonzero(step.dones & ~ended))
            ended |= step.dones
            self._last_obs, starts = step.new_obs, np.zeros_like(starts)  # type: ignore[assignment]
        if not ended.all():
            raise RuntimeError(
                f"{int((~ended).sum())} episode(s) ran past the round's budget of {budget} steps; "
                "the env's max_new_tokens must not exceed n_steps."
            )
        self.num_timesteps += (budget - taken) * env.num_envs
        self._last_episode_starts = np.ones(env.num_envs, dtype=bool)  # the next round
        self._finish_round(buffer, state)
        self._close_rollout(start)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _open_rollout(
        self, env: VecEnv, buffer: LMRolloutBuffer, callback: BaseCallback
    ) -> TokenCacheState:
        """Empty the buffer, rebuild the env's caches and start the policy's rollout state.

        The env's caches are rebuilt as a resumed run's are (bitwise resumes); the policy's state
        is new because the weights changed since the last rollout.
        """
        self.policy.set_training_mode(False)
        buffer.reset()
        rebuild_caches = getattr(env, "rebuild_caches", None)
        if rebuild_caches is not None:
            rebuild_caches()
        callback.on_rollout_start()
        self._rollout_state = rollout_state(self.policy, env)
        return self._rollout_state

    def _close_rollout(self, start: float) -> None:
        """The rollout's statistics (its episodes, summed over ranks) and its seconds."""
        self._rollout_stats = global_summary(self.tracker.summary())
        self._rollout_stats["rollout_s"] = time.perf_counter() - start

    def _add_round_step(
        self, buffer: LMRolloutBuffer, step: VectorStep, starts: np.ndarray, live: np.ndarray
    ) -> None:
        """Store one step of a round (a subclass adds what its update needs)."""
        args = (self._last_obs, step.actions.reshape(-1, 1), step.rewards, starts)
        buffer.add_step(*args, step.values, step.log_probs, live=live)

    def _finish_round(self, buffer: LMRolloutBuffer, state: TokenCacheState) -> None:
        """Values (a separate critic's, once per sequence) and GAE; every episode has ended."""
        dones = np.ones(self.n_envs, dtype=bool)
        buffer.close()
        last_values = bootstrap_values(
            self.policy, buffer, state, self._last_obs, dones, self.batch_size
        )
        buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)

    def _act_and_step(
        self, env: VecEnv, state: TokenCacheState, starts: np.ndarray, callback: BaseCallback
    ) -> VectorStep | None:
        """One vector step: act (one cached forward), hand the log-probs to the env, step it.

        The reference log-probs go to the env too when the act computed them (fused LoRA).

        The step is counted, shown to the callbacks (their ``locals`` hold ``infos``, ``dones``
        and ``new_obs`` as in SB3) and to the episode tracker. None when a callback stops.
        """
        with torch.no_grad():
            obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
            actions, values, log_probs, entropy, ref_log_probs = self.policy.act(
                state, obs_tensor, starts
            )
        actions_np = actions.cpu().numpy()
        env_call(env, "set_policy_logprobs", log_probs.cpu().numpy())
        if ref_log_probs is not None:
            env_call(env, "set_reference_logprobs", ref_log_probs.cpu().numpy())
        new_obs, rewards, dones, infos = env.step(actions_np)
        self.num_timesteps += env.num_envs
        callback.update_locals(locals())
        if not callback.on_step():
            return None
        self._update_info_buffer(infos, dones)
        self.tracker.step(rewards, dones, infos, entropy.cpu().numpy())  # type: ignore[union-attr]
        return VectorStep(actions_np, values, log_probs, new_obs, rewards, dones, infos)

"""PPO for language-model policies on :class:`rlhf_gym.envs.TextGenerationVecEnv`.

Extends SB3's PPO the sb3-contrib way: only ``_setup_model``, ``collect_rollouts``, ``train``,
``learn`` and save/load change. Rollouts go through ``env.step``, one token per step, with the
policy's KV cache carried per env as its recurrent state (one cached forward per vector step);
the act-time log-probs are handed to the env (``env.set_policy_logprobs``) so its KL term costs
no second policy forward. The update evaluates whole sequences: one teacher-forced forward per
sequence per epoch (see :mod:`rlhf_gym.agents.common.buffers`). Metrics: ``docs/metrics.md``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from rlhf_gym.agents.common.buffers import LMRolloutBuffer
from rlhf_gym.agents.common.checkpoint import CheckpointMixin
from rlhf_gym.agents.common.env_api import env_attr, env_call
from rlhf_gym.agents.common.kl_controller import (
    AdaptiveKLController,
    FixedKLController,
    make_kl_controller,
)
from rlhf_gym.agents.common.policies import (
    LMActorCriticPolicy,
    check_token_spaces,
)
from rlhf_gym.agents.common.stats import objective_metrics
from rlhf_gym.agents.ppo.losses import NonFiniteLossError, ppo_losses
from rlhf_gym.envs.episodes import EpisodeTracker
from rlhf_gym.lm.loading import vocab_size_of
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

SelfLMPPO = TypeVar("SelfLMPPO", bound="LMPPO")


class LMPPO(CheckpointMixin, PPO):
    """PPO with an LM policy, sequence minibatches and an adaptive KL coefficient.

    Arguments not listed are SB3 PPO's (``clip_range``, ``clip_range_vf``, ``max_grad_norm``,
    ``target_kl``, ``ent_coef``, ...), with RLHF defaults (docs/ppo.md).

    Args:
        policy: ``"LMPolicy"`` or :class:`LMActorCriticPolicy`; its ``policy_kwargs`` need
            ``model`` (name, path or model object of the SFT policy).
        env: a :class:`~rlhf_gym.envs.TextGenerationVecEnv`.
        n_steps: tokens per env per rollout (e.g. the env's ``max_new_tokens``).
        batch_size: sequences per minibatch (not tokens).
        init_kl_coef: beta to start with (None: keep the env's).
        adaptive_kl: use Ziegler's controller (else beta stays fixed).
        kl_target: target mean per-sequence KL (nats).
        kl_horizon: controller horizon, in sequences.
        ref_refresh_every: copy the policy into the env's reference every K rollouts (0: never).
        whiten_rewards: scale rewards to unit variance before GAE.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"LMPolicy": LMActorCriticPolicy}
    policy: LMActorCriticPolicy
    rollout_buffer: LMRolloutBuffer

    def __init__(
        self,
        policy: str | type[LMActorCriticPolicy],
        env: GymEnv,
        learning_rate: float | Schedule = 1e-5,
        n_steps: int = 48,
        batch_size: int = 8,
        n_epochs: int = 4,
        gamma: float = 1.0,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = 0.2,
        ent_coef: float = 0.0,
        vf_coef: float = 0.1,
        max_grad_norm: float = 1.0,
        target_kl: float | None = None,
        init_kl_coef: float | None = None,
        adaptive_kl: bool = True,
        kl_target: float = 6.0,
        kl_horizon: int = 10_000,
        ref_refresh_every: int = 0,
        whiten_rewards: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        self.init_kl_coef, self.adaptive_kl = init_kl_coef, adaptive_kl
        self.kl_target, self.kl_horizon = kl_target, kl_horizon
        self.ref_refresh_every, self.whiten_rewards = ref_refresh_every, whiten_rewards
        self.kl_ctl: AdaptiveKLController | FixedKLController | None = None
        self.tracker: EpisodeTracker | None = None
        self.last_metrics: dict[str, float] = {}
        self._shuffle_rng: np.random.Generator | None = None
        self._rollout_stats: dict[str, float] = {}
        self._n_rollouts = 0
        with warnings.catch_warnings():  # PPO's warning counts tokens; batch_size counts sequences
            warnings.filterwarnings("ignore", message="You have specified a mini-batch size")
            super().__init__(
                policy, env, learning_rate=learning_rate, n_steps=n_steps,
                batch_size=batch_size, n_epochs=n_epochs, gamma=gamma, gae_lambda=gae_lambda,
                clip_range=clip_range, clip_range_vf=clip_range_vf, normalize_advantage=False,
                ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm,
                target_kl=target_kl, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed,
                device=device, rollout_buffer_class=LMRolloutBuffer,
                rollout_buffer_kwargs={"whiten_rewards": whiten_rewards},
                _init_setup_model=_init_setup_model, **kwargs,
            )  # fmt: skip

    # ------------------------------------------------------------------ setup

    def _setup_model(self) -> None:
        if "model" not in self.policy_kwargs:
            raise ValueError("policy_kwargs needs 'model': the SFT policy's name, path or object.")
        check_token_spaces(self.observation_space, self.action_space)
        if self.env is not None:
            self.policy_kwargs.setdefault("temperature", float(env_attr(self.env, "temperature")))
        self._apply_saved_policy_dir()
        super()._setup_model()
        self._seed_generators()
        if self.env is not None:
            self._check_env()
            if self.kl_ctl is None:
                beta = self.init_kl_coef
                beta = env_call(self.env, "get_kl_coef") if beta is None else beta
                self.kl_ctl = make_kl_controller(
                    beta, self.adaptive_kl, self.kl_target, self.kl_horizon
                )
            env_call(self.env, "set_kl_coef", self.kl_ctl.value)
            if self.tracker is None or self.tracker.num_envs != self.n_envs:
                self.tracker = EpisodeTracker(self.n_envs)

    def _seed_generators(self) -> None:
        seed = 0 if self.seed is None else int(self.seed)
        self.policy.generator = torch.Generator(self.policy.device).manual_seed(seed)
        if self._shuffle_rng is None:
            self._shuffle_rng = np.random.default_rng(seed)
        self._restore_rng_state()

    def _check_env(self) -> None:
        """Clear errors for an env that does not fit the policy."""
        env_temperature = float(env_attr(self.env, "temperature"))
        if abs(env_temperature - self.policy.temperature) > 1e-9:
            raise ValueError(
                f"policy temperature {self.policy.temperature} != env temperature "
                f"{env_temperature}; log-probs must use the sampling temperature on both sides."
            )
        reference = getattr(self.env, "reference_model", None)
        if reference is not None and vocab_size_of(reference) != vocab_size_of(self.policy.model):
            raise ValueError(
                f"policy and reference vocabularies differ ({vocab_size_of(self.policy.model)} vs "
                f"{vocab_size_of(reference)} logits); both must use the policy's tokenizer."
            )
        if self.ref_refresh_every and self.policy.has_lora:
            raise ValueError(
                "ref_refresh_every needs a full-weight policy; with LoRA the reference is the base "
                "weights with adapters disabled."
            )

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "LMPPO",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        reset = self._last_obs is None or reset_num_timesteps
        result = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        if reset and self.tracker is not None:
            self.tracker = EpisodeTracker(self.n_envs)  # fresh episodes: drop running sums
        return result

    # ------------------------------------------------------------------ rollouts

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: LMRolloutBuffer,  # type: ignore[override]
        n_rollout_steps: int,
    ) -> bool:
        """Fill the buffer through ``env.step``, one cached policy forward per vector step."""
        assert self._last_obs is not None and self.tracker is not None
        start = time.perf_counter()
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        self.tracker.clear_finished()
        callback.on_rollout_start()
        # weights changed since the last rollout: the cache is rebuilt once, then only grows
        self._rollout_state = self.policy.initial_state(env.num_envs)
        dones = np.zeros(env.num_envs, dtype=bool)
        for _ in range(n_rollout_steps):
            with torch.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, values, log_probs, entropy = self.policy.act(
                    self._rollout_state, obs_tensor, self._last_episode_starts
                )
            actions_np = actions.cpu().numpy()
            env_call(env, "set_policy_logprobs", log_probs.cpu().numpy())
            new_obs, rewards, dones, infos = env.step(actions_np)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            self.tracker.step(rewards, dones, infos, entropy.cpu().numpy())
            # no bootstrap on truncation: the episode is over and its score was paid
            rollout_buffer.add(
                self._last_obs,
                actions_np.reshape(-1, 1),
                rewards,  # type: ignore[arg-type]
                self._last_episode_starts,
                values,
                log_probs,  # type: ignore[arg-type]
            )
            self._last_obs, self._last_episode_starts = new_obs, dones  # type: ignore[assignment]
        last_values = torch.zeros(env.num_envs)
        if not dones.all():  # some episodes continue past the rollout: bootstrap their value
            with torch.no_grad():
                obs_tensor = obs_as_tensor(new_obs, self.device)  # type: ignore[arg-type]
                last_values = self._rollout_state.advance(obs_tensor, dones).values
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self._rollout_stats = self.tracker.summary()
        self._rollout_stats["rollout_s"] = time.perf_counter() - start
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    # ------------------------------------------------------------------ update

    def train(self) -> None:
        """PPO epochs over sequence minibatches; then the KL controller and reference refresh."""
        start = time.perf_counter()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        clip_vf = (
            None
            if self.clip_range_vf is None
            else self.clip_range_vf(self._current_progress_remaining)
        )  # type: ignore[operator]
        metrics: dict[str, list[float]] = {}
        for _epoch in range(self.n_epochs):
            epoch_kls = []
            for batch in self.rollout_buffer.get_sequences(self.batch_size, self._shuffle_rng):
                terms = self._train_minibatch(batch, clip_range, clip_vf)
                for key, value in terms.items():
                    metrics.setdefault(key, []).append(value)
                epoch_kls.append(terms["policy/approxkl"])
            self._n_updates += 1
            if self.target_kl is not None and np.mean(epoch_kls) > 1.5 * self.target_kl:
                break
        self._after_update({k: float(np.mean(v)) for k, v in metrics.items()}, start)

    def _train_minibatch(
        self, batch: Any, clip_range: float, clip_vf: float | None
    ) -> dict[str, float]:
        log_prob, values, entropy = self.policy.evaluate_sequences(
            batch.input_ids, batch.attention_mask, batch.positions, batch.actions
        )
        loss, terms = ppo_losses(
            batch, log_prob, values, entropy, clip_range, clip_vf, self.vf_coef, self.ent_coef
        )
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"PPO loss is {loss.item()} at update {self._n_updates} ({terms}); training "
                "stopped "
                "before applying it. Lower the learning rate or check the reward's scale; the last "
                "saved checkpoint is untouched."
            )
        self.policy.optimizer.zero_grad()
        loss.backward()
        params = [p for p in self.policy.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if not torch.isfinite(norm):
            raise NonFiniteLossError(
                f"gradient norm is {norm.item()} at update {self._n_updates}; training stopped "
                "before the optimizer step. The last saved checkpoint is untouched."
            )
        self.policy.optimizer.step()
        return terms

    def _after_update(self, update_metrics: dict[str, float], start: float) -> None:
        self._n_rollouts += 1
        stats = self._rollout_stats
        assert self.kl_ctl is not None
        kl_coef = self.kl_ctl.value
        if "kl" in stats:
            env_call(
                self.env, "set_kl_coef", self.kl_ctl.update(stats["kl"], int(stats["num_episodes"]))
            )
        if self.ref_refresh_every and self._n_rollouts % self.ref_refresh_every == 0:
            env_call(self.env, "load_reference_state_dict", self.policy.model.state_dict())
        named = {
            **objective_metrics(stats, kl_coef),
            "time/update_s": time.perf_counter() - start,
            "train/learning_rate": self.policy.optimizer.param_groups[0]["lr"],
            "train/n_updates": self._n_updates,
            **update_metrics,
        }
        self.last_metrics = {k: float(v) for k, v in named.items() if v is not None}
        for key, value in self.last_metrics.items():
            self.logger.record(key, value)

    # ------------------------------------------------------------------ learn

    def learn(
        self: SelfLMPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "LMPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfLMPPO:
        """As SB3's, except that each iteration's logs are written after its update."""
        iteration = 0
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        while self.num_timesteps < total_timesteps:
            if not self.collect_rollouts(self.env, callback, self.rollout_buffer, self.n_steps):
                break
            iteration += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            self.train()
            if log_interval is not None and iteration % log_interval == 0:
                self.dump_logs(iteration)
        callback.on_training_end()
        return self

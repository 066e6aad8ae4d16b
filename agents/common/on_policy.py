"""The base of every on-policy agent for language-model policies, the sb3-contrib way.

:class:`LMOnPolicyAlgorithm` derives from SB3's ``OnPolicyAlgorithm`` and holds what PPO (and
GRPO and RLOO) share: the LM policy and its checks against the env, the KL controller that
owns the schedule of β (the env's ``kl_coef``), rollouts through ``env.step`` with the policy's
KV cache as its recurrent state, a gradient step that refuses non-finite losses, and the
bookkeeping after each update. An algorithm subclass adds its own arguments and ``train()``.

Rollouts (:mod:`rlhf_gym.agents.common.rollouts`) go one token per step, one cached policy
forward per vector step, with the act-time log-probs handed to the env so its KL term costs no
second policy forward. By default a rollout is *episode-aligned*: one whole episode per env, a
finished row out of every forward until the last one ends (``episode_aligned=False``: SB3's
fixed ``n_steps``). The logged keys are explained in ``docs/metrics.md``.

Under ``torchrun`` (a process group of K > 1 ranks, :mod:`rlhf_gym.distributed`) each rank
collects its own shard with its own seed, and the ranks agree on everything that steers
training: rank 0's weights at setup, the job's rollout statistics, and the token-weighted mean
gradient of every step. Only rank 0 logs. ``docs/distributed.md`` explains the choices.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch
from rlhf_gym.agents.common.buffers import LMRolloutBuffer
from rlhf_gym.agents.common.checkpoint import CheckpointMixin
from rlhf_gym.agents.common.env_api import env_attr, env_call
from rlhf_gym.agents.common.fused_reference import fuse_reference_forward
from rlhf_gym.agents.common.kl_controller import (
    AdaptiveKLController,
    FixedKLController,
    make_kl_controller,
)
from rlhf_gym.agents.common.models import check_token_spaces
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.agents.common.rollouts import RolloutMixin
from rlhf_gym.agents.common.stats import objective_metrics
from rlhf_gym.agents.common.token_state import TokenCacheState
from rlhf_gym.distributed import (
    all_reduce_gradients,
    all_reduce_sum,
    broadcast_tensors,
    check_uniform,
    is_distributed,
    is_main_process,
    rank_seed,
)
from rlhf_gym.envs.episodes import EpisodeTracker
from rlhf_gym.lm.loading import vocab_size_of
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient norm became NaN or inf; training stops before applying it."""


class LMOnPolicyAlgorithm(RolloutMixin, CheckpointMixin, OnPolicyAlgorithm):
    """An on-policy algorithm whose policy is an LM acting one token per env step.

    Arguments not listed are SB3's ``OnPolicyAlgorithm``'s, here with RLHF defaults
    (docs/ppo.md). β starts from the env's ``kl_coef`` (hook ``get_kl_coef``) and the
    controller sets it back after each update (``set_kl_coef``).

    Args:
        policy: ``"LMPolicy"`` or :class:`LMActorCriticPolicy`; its ``policy_kwargs`` need
            ``model`` (name, path or model object of the SFT policy).
        env: a :class:`~rlhf_gym.envs.TextGenerationVecEnv`.
        adaptive_kl: use Ziegler's controller (else β stays fixed).
        kl_target: target mean per-sequence KL (nats).
        kl_horizon: controller horizon, in sequences.
        ref_refresh_every: copy the policy into the env's reference every K rollouts (0: never).
        whiten_rewards: scale rewards to unit variance before GAE.
        n_steps: episode-aligned, the round's step budget, at least the env's
            ``max_new_tokens``; else SB3's steps per env per rollout. None: ``max_new_tokens``.
        episode_aligned: collect exactly one whole episode per env per rollout (the env runs
            in rounds, :meth:`~rlhf_gym.envs.TextGenerationVecEnv.set_rounds`); False: SB3's
            fixed ``n_steps`` rollouts, episodes carried across them.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"LMPolicy": LMActorCriticPolicy}
    policy: LMActorCriticPolicy
    rollout_buffer: LMRolloutBuffer
    batch_size: int  # sequences per minibatch, and per critic forward after a rollout

    def __init__(
        self,
        policy: str | type[LMActorCriticPolicy],
        env: GymEnv,
        learning_rate: float | Schedule = 1e-5,
        n_steps: int | None = None,
        gamma: float = 1.0,
        gae_lambda: float = 0.95,
        ent_coef: float = 0.0,
        vf_coef: float = 0.1,
        max_grad_norm: float = 1.0,
        adaptive_kl: bool = True,
        kl_target: float = 6.0,
        kl_horizon: int = 10_000,
        ref_refresh_every: int = 0,
        whiten_rewards: bool = False,
        episode_aligned: bool = True,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        self.adaptive_kl, self.kl_target, self.kl_horizon = adaptive_kl, kl_target, kl_horizon
        self.ref_refresh_every, self.whiten_rewards = ref_refresh_every, whiten_rewards
        self.episode_aligned = episode_aligned
        self.kl_ctl: AdaptiveKLController | FixedKLController | None = None
        self.tracker: EpisodeTracker | None = None
        self.last_metrics: dict[str, float] = {}
        self._shuffle_rng: np.random.Generator | None = None
        self._rollout_state: TokenCacheState | None = None
        self._rollout_stats: dict[str, float] = {}
        self._n_rollouts = 0
        super().__init__(
            policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma,
            gae_lambda=gae_lambda, ent_coef=ent_coef, vf_coef=vf_coef,
            max_grad_norm=max_grad_norm, use_sde=False, sde_sample_freq=-1,
            rollout_buffer_class=LMRolloutBuffer,
            rollout_buffer_kwargs={"whiten_rewards": whiten_rewards},
            policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
            _init_setup_model=_init_setup_model,
            **kwargs,
        )  # fmt: skip

    # ------------------------------------------------------------------ setup

    def _setup_model(self) -> None:
        if "model" not in self.policy_kwargs:
            raise ValueError("policy_kwargs needs 'model': the SFT policy's name, path or object.")
        check_token_spaces(self.observation_space, self.action_space)
        if self.n_steps is None:  # without an env (loaded for prediction) any size will do
            self.n_steps = int(env_attr(self.env, "max_new_tokens")) if self.env is not None else 1
        if self.env is not None:
            self.policy_kwargs.setdefault("temperature", float(env_attr(self.env, "temperature")))
        super()._setup_model()
        if is_distributed():  # every rank starts from rank 0's weights, in lockstep
            check_uniform(self._rank_settings(), "launch every rank with the same arguments.")
            broadcast_tensors(self.policy.parameters())
        self._seed_generators()
        if self.env is not None:
            self._check_env()
            fuse_reference_forward(self.policy, self.env)  # LoRA: act and reference in one forward
            self._set_rounds()
            if self.kl_ctl is None:  # β has one owner, the env: start from its value
                self.kl_ctl = make_kl_controller(
                    env_call(self.env, "get_kl_coef"),
                    self.adaptive_kl,
                    self.kl_target,
                    self.kl_horizon,
                )
            env_call(self.env, "set_kl_coef", self.kl_ctl.value)
            if self.tracker is None or self.tracker.num_envs != self.n_envs:
                self.tracker = EpisodeTracker(self.n_envs)

    def _rank_settings(self) -> dict[str, float]:
        """Settings that fix how many collectives an iteration makes: equal on every rank."""
        return {"n_envs": self.n_envs, "n_steps": self.n_steps}

    def set_random_seed(self, seed: int | None = None) -> None:
        """SB3's seeding (env, torch, numpy), each rank on its own :func:`rank_seed`."""
        super().set_random_seed(rank_seed(seed))

    def _seed_generators(self) -> None:
        """The policy's sampling generator and the minibatch shuffler, from this rank's seed."""
        seed = rank_seed(0 if self.seed is None else int(self.seed))
        self.policy.generator = torch.Generator(self.policy.device).manual_seed(seed)
        if self._shuffle_rng is None:
            self._shuffle_rng = np.random.default_rng(seed)

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

    def _set_rounds(self) -> None:
        """Episode-aligned: put the env in rounds, after checking a round fits the budget."""
        rounds = bool(env_attr(self.env, "rounds"))
        if not self.episode_aligned:
            if rounds:
                raise ValueError(
                    "episode_aligned=False runs SB3's fixed n_steps rollouts, which need an env "
                    "whose rows restart at once; this env runs in rounds (rounds=True or "
                    "group_size > 1). Build it without rounds, or keep episode_aligned=True."
                )
            return
        budget = int(env_attr(self.env, "max_new_tokens"))
        if self.n_steps < budget:
            raise ValueError(
                f"n_steps={self.n_steps} < the env's max_new_tokens={budget}: an episode-aligned "
                "rollout holds every row's whole episode. Pass n_steps >= max_new_tokens (or "
                "None), or episode_aligned=False (train-ppo: --fixed-steps) for fixed n_steps "
                "rollouts."
            )
        if not rounds:
            env_call(self.env, "set_rounds", True)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        reset = self._last_obs is None or reset_num_timesteps
        if not is_main_process():  # before SB3 configures one that writes
            self.set_logger(Logger(folder=None, output_formats=[]))
        result = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        if reset and self.tracker is not None:
            self.tracker = EpisodeTracker(self.n_envs)  # fresh episodes: drop running sums
        return result

    # ------------------------------------------------------------------ update

    def _gradient_step(
        self, loss: torch.Tensor | None, terms: dict[str, float], weight: float = 1.0
    ) -> dict[str, float]:
        """Backward, clip the gradient norm and step, refusing a non-finite loss or norm.

        Args:
            loss: the minibatch loss to minimise (a mean over its ``weight`` tokens); None on a
                rank that has no minibatch left for this step (distributed only).
            terms: its logged terms, quoted in the error.
            weight: how many tokens the loss averages; distributed ranks weight by it.

        Returns:
            The logged terms: ``terms``, or distributed, their token-weighted mean over ranks.

        Raises:
            NonFiniteLossError: before the optimizer step, so the weights stay as they were.
        """
        if is_distributed():
            return self._synced_gradient_step(loss, terms, weight)
        assert loss is not None, "only a distributed rank may skip a minibatch"
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{type(self).__name__} loss is {loss.item()} at update {self._n_updates} "
                f"({terms}); training stopped before applying it. Lower the learning rate or "
                "check the reward's scale; the last saved checkpoint is untouched."
            )
        self.policy.optimizer.zero_grad()
        loss.backward()
        self._clip_and_step()
        return terms

    def _clip_and_step(self) -> None:
        """Clip the gradient norm and step, unless the norm is not finite."""
        params = [p for p in self.policy.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if not torch.isfinite(norm):
            raise NonFiniteLossError(
                f"gradient norm is {norm.item()} at update {self._n_updates}; training stopped "
                "before the optimizer step. The last saved checkpoint is untouched."
            )
        self.policy.optimizer.step()

    def _synced_gradient_step(
        self, loss: torch.Tensor | None, terms: dict[str, float], weight: float
    ) -> dict[str, float]:
        """The step on the job's minibatch: the union of every rank's, weighted by tokens.

        Each rank's gradient of its token mean is scaled by its share of the job's tokens and
        summed over ranks, which is the gradient one process would take on the union; every
        rank then clips the same norm and steps the same weights.
        """
        names = sorted(terms)
        finite = loss is None or bool(torch.isfinite(loss))
        totals = all_reduce_sum([not finite, weight, *(weight * terms[k] for k in names)])
        if totals[0]:  # every rank stops together, or the others would wait forever
            here = "" if finite else f"; here {loss.item() if loss is not None else None} {terms}"
            raise NonFiniteLossError(
                f"{type(self).__name__} loss is not finite on {int(totals[0])} rank(s) at update "
                f"{self._n_updates}{here}; training stopped before applying it. Lower the "
                "learning rate or check the reward's scale; the last saved checkpoint is untouched."
            )
        self.policy.optimizer.zero_grad()
        if loss is not None:
            loss.backward()
        params = [p for p in self.policy.parameters() if p.requires_grad]
        all_reduce_gradients(params, weight / totals[1])
        self._clip_and_step()
        return {
            name: float(value / totals[1]) for name, value in zip(names, totals[2:], strict=True)
        }

    def set_logger(self, logger: Logger) -> None:
        """SB3's; on a rank other than 0 a logger without outputs (rank 0 logs the job)."""
        super().set_logger(logger if is_main_process() else Logger(folder=None, output_formats=[]))

    def _after_update(self, update_metrics: dict[str, float], start: float) -> None:
        """Move β and push it to the env, refresh the reference, record the metrics.

        Args:
            update_metrics: the update's own metrics (means over its minibatches).
            start: ``time.perf_counter()`` when the update began.
        """
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

"""Build a PPO job's env, agent and held-out evaluation from its config and sources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.evaluation.callbacks import HeldOutEvalCallback
from rlhf_gym.lm.loading import load_causal_lm
from rlhf_gym.training.config import TrainPPOConfig
from rlhf_gym.training.sources import PPOSources


def build_env(config: TrainPPOConfig, sources: PPOSources, reward: Any) -> TextGenerationVecEnv:
    """The training env: ``num_envs`` rows, the frozen reference, the reward, β = ``kl_coef``."""
    return TextGenerationVecEnv(
        config.num_envs,
        prompts=sources.prompts,
        tokenizer=sources.tokenizer,
        reference_model=load_causal_lm(sources.reference),
        reward=reward,
        max_prompt_tokens=config.max_prompt_tokens,
        max_new_tokens=config.max_new_tokens,
        kl_coef=config.kl_coef,
        temperature=config.temperature,
        missing_eos_penalty=config.missing_eos_penalty,
        device=config.device,
    )


def build_agent(config: TrainPPOConfig, sources: PPOSources, env: Any) -> Any:
    """The :class:`~rlhf_gym.agents.ppo.LMPPO` agent; its KL controller starts from the env's β."""
    from rlhf_gym.agents.ppo import LMPPO

    policy_kwargs: dict[str, Any] = {"model": sources.policy}
    if config.critic:
        policy_kwargs["critic"] = config.critic
    if config.lora_r:
        policy_kwargs["lora"] = {"r": config.lora_r, "lora_alpha": 2 * config.lora_r}
    return LMPPO(
        "LMPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps or config.max_new_tokens,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        clip_range=config.clip_range,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        target_kl=config.target_kl,
        adaptive_kl=config.adaptive_kl,
        kl_target=config.kl_target,
        kl_horizon=config.kl_horizon,
        ref_refresh_every=config.ref_refresh_every,
        whiten_rewards=config.whiten_rewards,
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=config.device,
        verbose=config.verbose,
    )


def build_evaluation(
    config: TrainPPOConfig,
    sources: PPOSources,
    reward: Any,
    env: TextGenerationVecEnv,
    log: Callable[[str], None] = print,
) -> HeldOutEvalCallback:
    """Held-out evaluation after every update, against the env's reference and reward."""
    return HeldOutEvalCallback(
        sources.eval_prompts,
        reward,
        reference=env.reference_model,
        tokenizer=sources.tokenizer,
        gold=sources.gold,
        samples_per_prompt=config.eval_per_prompt,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        device=config.device,
        log=log,
    )

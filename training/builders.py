"""Build a PPO job's env, agent, held-out evaluation and checkpoints from its config and sources.

A resumed job (``config.resume``) takes its settings and its agent from its checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.evaluation.callbacks import HeldOutEvalCallback
from rlhf_gym.lm.loading import load_causal_lm
from rlhf_gym.training.config import TrainPPOConfig, resumed_config
from rlhf_gym.training.loop import CHECKPOINT_DIR, IterationCheckpoint
from rlhf_gym.training.sources import PPOSources

#: Config fields passed under the same name to the env and to the agent.
ENV_FIELDS = (
    "max_prompt_tokens", "max_new_tokens", "kl_coef", "temperature", "missing_eos_penalty",
    "device",
)
AGENT_FIELDS = (
    "learning_rate", "batch_size", "clip_range", "vf_coef", "max_grad_norm",
    "target_kl", "adaptive_kl", "kl_target", "kl_horizon", "ref_refresh_every", "whiten_rewards",
    "seed", "device", "verbose",
)


def pick(config: TrainPPOConfig, names: tuple[str, ...]) -> dict[str, Any]:
    """``{name: config.name}`` for each name."""
    return {name: getattr(config, name) for name in names}


def build_env(config: TrainPPOConfig, sources: PPOSources, reward: Any) -> TextGenerationVecEnv:
    """The training env: ``num_envs`` rows, the frozen reference, the reward, β = ``kl_coef``."""
    return TextGenerationVecEnv(
        config.num_envs,
        prompts=sources.prompts,
        tokenizer=sources.tokenizer,
        reference_model=load_causal_lm(sources.reference),
        reward=reward,
        **pick(config, ENV_FIELDS),
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
        n_steps=config.n_steps or config.max_new_tokens,
        n_epochs=config.ppo_epochs,
        policy_kwargs=policy_kwargs,
        **pick(config, AGENT_FIELDS),
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
        samples_per_prompt=config.curve_samples,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        device=config.device,
        log=log,
    )


def configure_tracking(agent: Any, config: TrainPPOConfig) -> str | None:
    """Point the agent's SB3 logger at ``--report-to`` under ``output_dir/logs``.

    "tensorboard" and "csv" are SB3's own writers; "wandb" starts a run that syncs the
    TensorBoard files (needs ``pip install wandb``). Returns the log folder, or None for "none".
    """
    if config.report_to == "none":
        return None
    from stable_baselines3.common.logger import configure

    folder = os.path.join(config.output_dir, "logs")
    formats = ["csv"] if config.report_to == "csv" else ["tensorboard"]
    if config.report_to == "wandb":
        try:
            import wandb
        except ImportError as err:
            message = "--report-to wandb needs wandb: pip install 'rlhf-gym[wandb]'."
            raise ImportError(message) from err
        wandb.init(config=asdict(config), sync_tensorboard=True, dir=config.output_dir)
    if config.report_to != "csv":
        try:
            import tensorboard  # noqa: F401
        except ImportError as err:
            raise ImportError(
                f"--report-to {config.report_to} writes TensorBoard files and needs tensorboard: "
                "pip install 'rlhf-gym[tracking]'."
            ) from err
    agent.set_logger(configure(folder, formats + (["stdout"] if config.verbose else [])))
    return folder


def build_checkpoints(
    config: TrainPPOConfig, evaluation: HeldOutEvalCallback
) -> list[IterationCheckpoint]:
    """Save to ``output_dir/checkpoint`` every ``save_every`` iterations (config, records)."""
    if not config.save_every:
        return []

    def extra() -> dict[str, Any]:
        return {"config": asdict(config), "records": evaluation.records}

    path = os.path.join(config.output_dir, CHECKPOINT_DIR)
    return [IterationCheckpoint(path, config.save_every, extra=extra)]


def load_resumed_config(config: TrainPPOConfig) -> TrainPPOConfig:
    """The settings of the run saved in ``config.resume`` (see :func:`resumed_config`)."""
    from rlhf_gym.agents.common.checkpoint import read_checkpoint_extra

    saved = read_checkpoint_extra(os.path.join(config.resume, CHECKPOINT_DIR)).get("config")
    if saved is None:
        raise ValueError(
            f"{config.resume}/{CHECKPOINT_DIR} was not saved by train-ppo (no config in it)."
        )
    return resumed_config(config, saved)


def resume_agent(config: TrainPPOConfig, env: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The agent saved in ``config.resume``, continuing its episodes in ``env``, and its records."""
    from rlhf_gym.agents.ppo import LMPPO

    path = os.path.join(config.resume, CHECKPOINT_DIR)
    agent = LMPPO.load(path, env=env, device=config.device, force_reset=False)
    return agent, list(agent.checkpoint_extra.get("records", []))

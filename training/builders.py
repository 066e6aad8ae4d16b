"""Build a PPO job's models, env, agent, held-out evaluation and checkpoints from its config.

The trained policy is float32; the frozen models (the env's reference, a LoRA base) load in
``--dtype``. With ``--lora-r`` and the policy as its own reference, the policy's LoRA model is
built first and the env's reference is a view of its base weights with the adapters disabled
(:class:`~rlhf_gym.agents.common.lora.ReferenceView`), so the model is held once, not twice.
A resumed job (``config.resume``) takes its settings and its agent from its checkpoint.
``--algo grpo|rloo`` builds a grouped env (``--group-size``) and a critic-free agent instead of
PPO's (docs/grpo_rloo.md); everything else (CLI, curves, held-out evaluation) is shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NamedTuple

import torch
from rlhf_gym.agents.common.lora import ReferenceView, apply_lora
from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.evaluation.callbacks import HeldOutEvalCallback
from rlhf_gym.lm.loading import load_causal_lm
from rlhf_gym.training.config import TrainPPOConfig, resumed_config
from rlhf_gym.training.loop import CHECKPOINT_DIR, IterationCheckpoint
from rlhf_gym.training.sources import PPOSources, prompt_budget
from torch import nn

#: Config fields passed under the same name to the env and to the agent.
ENV_FIELDS = ("max_new_tokens", "kl_coef", "temperature", "missing_eos_penalty", "device")
AGENT_FIELDS = (
    "learning_rate",
    "batch_size",
    "clip_range",
    "vf_coef",
    "max_grad_norm",
    "target_kl",
    "adaptive_kl",
    "kl_target",
    "kl_horizon",
    "ref_refresh_every",
    "whiten_rewards",
    "seed",
    "device",
    "verbose",
)


#: Config fields of the group agents (GRPO, RLOO); ``kl_coef`` becomes GRPO's ``beta``.
GROUP_AGENT_FIELDS = (
    "learning_rate",
    "batch_size",
    "clip_range",
    "max_grad_norm",
    "ref_refresh_every",
    "seed",
    "device",
    "verbose",
)
#: The group rounds' default size, when ``--group-size`` is 0.
DEFAULT_GROUP_SIZE = 4


def group_size(config: TrainPPOConfig) -> int:
    """The env's ``group_size``: ``--group-size``, or 4 for grpo/rloo and 1 for ppo."""
    if config.group_size:
        return config.group_size
    return 1 if config.algo == "ppo" else DEFAULT_GROUP_SIZE


def check_algo(config: TrainPPOConfig) -> None:
    """Refuse flags the chosen ``--algo`` has no use for, naming them."""
    if config.algo == "ppo":
        if group_size(config) > 1:
            raise ValueError("--group-size is for --algo grpo or rloo; PPO takes one row a prompt.")
        return
    unused = {
        "--critic": bool(config.critic),
        "--whiten-rewards": config.whiten_rewards,
        "--target-kl": config.target_kl is not None,
        "--fixed-steps": config.fixed_steps,
    }
    named = [flag for flag, given in unused.items() if given]
    if named:
        raise ValueError(
            f"--algo {config.algo} has no value model, early stop or fixed-step rollouts (a "
            f"rollout is one round): drop {', '.join(named)}."
        )


def agent_class(config: TrainPPOConfig) -> type:
    """``LMPPO``, ``LMGRPO`` or ``LMRLOO`` for ``--algo``."""
    if config.algo == "ppo":
        from rlhf_gym.agents.ppo import LMPPO

        return LMPPO
    from rlhf_gym.agents.group import LMGRPO, LMRLOO

    return LMGRPO if config.algo == "grpo" else LMRLOO


def agent_settings(config: TrainPPOConfig) -> dict[str, Any]:
    """The agent's constructor arguments from the config, for ``--algo``."""
    n_steps = config.n_steps or config.max_new_tokens
    settings = {
        "n_steps": n_steps,
        "n_epochs": config.ppo_epochs,
        "episode_aligned": not config.fixed_steps,
    }
    if config.algo == "ppo":
        return {**settings, **pick(config, AGENT_FIELDS)}
    settings.update(pick(config, GROUP_AGENT_FIELDS))
    if config.algo == "grpo":  # the env pays no KL; β is the loss's, fixed
        return {**settings, "beta": config.kl_coef}
    return {**settings, **pick(config, ("adaptive_kl", "kl_target", "kl_horizon"))}


class JobModels(NamedTuple):
    """The env's frozen reference and, with LoRA, the policy model it is a view of."""

    reference: nn.Module
    lora: nn.Module | None = None


def pick(config: TrainPPOConfig, names: tuple[str, ...]) -> dict[str, Any]:
    """``{name: config.name}`` for each name."""
    return {name: getattr(config, name) for name in names}


def lora_settings(config: TrainPPOConfig) -> dict[str, Any]:
    """The ``peft.LoraConfig`` arguments of ``--lora-r`` (alpha 2r, peft's default targets)."""
    return {"r": config.lora_r, "lora_alpha": 2 * config.lora_r}


def load_models(config: TrainPPOConfig, sources: PPOSources) -> JobModels:
    """The reference in ``--dtype``; with LoRA on the policy, the policy model first and a view.

    A resumed LoRA job puts its checkpoint's adapters on the base.
    """
    if not config.lora_r or sources.reference != sources.policy:
        return JobModels(load_causal_lm(sources.reference, dtype=config.dtype))
    adapters: Any = lora_settings(config)
    if config.resume:
        from rlhf_gym.agents.common.checkpoint import POLICY_DIR
        from rlhf_gym.agents.common.checkpoint_files import locate

        adapters = os.fspath(locate(os.path.join(config.resume, CHECKPOINT_DIR)) / POLICY_DIR)
    base = load_causal_lm(sources.policy, dtype=config.dtype)
    torch.manual_seed(config.seed)  # the adapters' random init, as the agent's seed would set it
    lora = apply_lora(base, adapters)
    return JobModels(ReferenceView(lora), lora)


def build_env(
    config: TrainPPOConfig, sources: PPOSources, reward: Any, reference: nn.Module | None = None
) -> TextGenerationVecEnv:
    """The training env: ``num_envs`` rows, the frozen reference, the reward, β = ``kl_coef``.

    Args:
        config: the job's settings.
        sources: its resolved pieces.
        reward: the proxy reward source.
        reference: the reference model (from :func:`load_models`); None loads
            ``sources.reference`` in ``--dtype`` (a full copy, even with LoRA).
    """
    check_algo(config)
    if reference is None:
        reference = load_causal_lm(sources.reference, dtype=config.dtype)
    settings = pick(config, ENV_FIELDS)
    if config.algo == "grpo":
        settings["kl_coef"] = 0.0  # GRPO's KL is in its loss (β = --kl-coef)
    return TextGenerationVecEnv(
        config.num_envs,
        prompts=sources.prompts,
        tokenizer=sources.tokenizer,
        reference_model=reference,
        reward=reward,
        max_prompt_tokens=prompt_budget(config, sources),
        group_size=group_size(config),
        **settings,
    )


def build_agent(
    config: TrainPPOConfig, sources: PPOSources, env: Any, lora: nn.Module | None = None
) -> Any:
    """The ``--algo`` agent (``LMPPO`` by default); its KL controller starts from the env's β.

    Args:
        config: the job's settings.
        sources: its resolved pieces.
        env: the training env.
        lora: the policy's LoRA model from :func:`load_models` (the env's reference is a view
            of it); None builds the policy from ``sources.policy``.
    """
    check_algo(config)
    policy_kwargs: dict[str, Any] = {"model": sources.policy, "dtype": config.dtype}
    if config.critic:
        policy_kwargs["critic"] = config.critic
    if config.lora_r:
        policy_kwargs["lora"] = lora if lora is not None else lora_settings(config)
    agent_type = agent_class(config)
    agent = agent_type("LMPolicy", env, policy_kwargs=policy_kwargs, **agent_settings(config))
    agent.policy.tokenizer = sources.tokenizer  # saved with the weights: the folder loads alone
    return agent


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


def resume_agent(
    config: TrainPPOConfig, env: Any, lora: nn.Module | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """The agent saved in ``config.resume``, continuing its episodes in ``env``, and its records.

    Args:
        config: the resumed job's settings.
        env: the env to continue in.
        lora: the policy's LoRA model with the checkpoint's adapters (from :func:`load_models`),
            whose view is ``env``'s reference; None rebuilds the policy from the checkpoint.
    """
    from rlhf_gym.agents.common.checkpoint import POLICY_DIR
    from rlhf_gym.agents.common.checkpoint_files import locate

    path = os.path.join(config.resume, CHECKPOINT_DIR)
    extra = {} if lora is None else {"policy_kwargs": {"lora": lora}}
    agent = agent_class(config).load(
        path, env=env, device=config.device, force_reset=False, **extra
    )
    if lora is not None:  # the policy took the adapters as built; its value head is saved apart
        agent.policy.load_value_head(locate(path) / POLICY_DIR)
    agent.policy.tokenizer = env.tokenizer
    return agent, list(agent.checkpoint_extra.get("records", []))

"""The settings of a PPO training job, one documented field each (``rlhf-gym train-ppo``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from rlhf_gym.envs.rewards import DEFAULT_KL_COEF


@dataclass
class TrainPPOConfig:
    """Settings of one PPO job on the token env; each field is a ``train-ppo`` flag."""

    policy: str = field(
        default="",
        metadata={
            "help": "policy model name or folder; empty: the toy SFT model when nothing "
            "else real is named; 'toy': the toy SFT model, explicitly",
            "path": True,
        },
    )
    reference: str = field(
        default="", metadata={"help": "reference model; empty: the policy", "path": True}
    )
    tokenizer: str = field(
        default="",
        metadata={
            "help": "tokenizer; empty: the policy folder's (the toy one on the toy world)",
            "path": True,
        },
    )
    reward: str = field(
        default="",
        metadata={
            "help": "module:function scoring (prompts, completions), or 'gold' (the toy "
            "world's utility, for toy text only); empty: gold on the toy world, "
            "else --reward-model is needed"
        },
    )
    reward_model: str = field(
        default="",
        metadata={
            "help": "reward model folder or hub id (over --reward); any "
            "AutoModelForSequenceClassification",
            "path": True,
        },
    )
    prompts: str = field(
        default="",
        metadata={
            "help": "training prompts: a text file (one per line), JSONL/parquet, a "
            "save_to_disk folder or a hub dataset; empty: the toy world's",
            "path": True,
        },
    )
    prompts_split: str = field(default="train", metadata={"help": "split of --prompts"})
    prompt_column: str = field(
        default="prompt",
        metadata={
            "help": "column of --prompts holding the prompt (text, or a message list "
            "rendered with the tokenizer's chat template)"
        },
    )
    eval_prompts: str = field(
        default="",
        metadata={
            "help": "held-out prompts, any --prompts format; empty: the toy world's, or "
            "--eval-prompts-split of --prompts",
            "path": True,
        },
    )
    eval_prompts_split: str = field(
        default="",
        metadata={
            "help": "split of --eval-prompts (empty: train); without --eval-prompts, the "
            "split of --prompts held out (e.g. test)"
        },
    )
    eval_prompt_column: str = field(
        default="", metadata={"help": "column of the held-out prompts; empty: --prompt-column"}
    )
    curve_samples: int = field(
        default=32, metadata={"help": "held-out samples per prompt after each iteration", "min": 1}
    )
    output_dir: str = field(
        default="runs/ppo", metadata={"help": "where curves and checkpoints go"}
    )
    toy_dir: str = field(default="", metadata={"help": "toy artifacts dir; empty: its cache"})
    world_seed: int = field(default=0, metadata={"help": "toy world seed"})
    seed: int = field(default=0, metadata={"help": "agent and env seed"})
    algo: Literal["ppo", "grpo", "rloo"] = field(
        default="ppo",
        metadata={
            "help": "the RL algorithm: ppo (value head, GAE), grpo (group z-scores, the KL "
            "in the loss with --kl-coef as its beta) or rloo (leave-one-out, the KL in the "
            "reward); grpo and rloo have no value model (docs/grpo_rloo.md)"
        },
    )
    group_size: int = field(
        default=0,
        metadata={
            "help": "completions per prompt for grpo/rloo (--num-envs a multiple of it); "
            "0: 4 for grpo/rloo, 1 for ppo",
            "min": 0,
        },
    )
    iterations: int = field(
        default=25, metadata={"help": "PPO iterations (rollout + update)", "min": 1}
    )
    num_envs: int = field(default=32, metadata={"help": "parallel episodes (rows)", "min": 1})
    n_steps: int = field(
        default=0,
        metadata={
            "help": "a round's step budget, >= max_new_tokens (with --fixed-steps: tokens per "
            "env per rollout); 0: max_new_tokens",
            "min": 0,
        },
    )
    fixed_steps: bool = field(
        default=False,
        metadata={
            "help": "ppo: SB3's fixed n_steps rollouts, episodes carried across iterations, "
            "instead of one whole episode per env per rollout"
        },
    )
    max_new_tokens: int = field(default=48, metadata={"help": "completion budget", "min": 1})
    max_prompt_tokens: int = field(
        default=0,
        metadata={
            "help": "prompt budget in tokens (longer prompts keep their end, with a "
            "warning); 0: 8 on the toy world, else the longest prompt (training "
            "and held-out), at most the policy's positions minus max_new_tokens",
            "min": 0,
        },
    )
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature", "min": 1e-6})
    learning_rate: float = field(
        default=1e-4, metadata={"help": "Adam learning rate (eps 1e-5)", "min": 0.0}
    )
    ppo_epochs: int = field(default=4, metadata={"help": "PPO epochs per rollout", "min": 1})
    batch_size: int = field(default=8, metadata={"help": "sequences per minibatch", "min": 1})
    clip_range: float = field(default=0.2, metadata={"help": "PPO ratio clip", "min": 0.0})
    vf_coef: float = field(default=0.1, metadata={"help": "value loss coefficient", "min": 0.0})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping", "min": 0.0})
    target_kl: float | None = field(
        default=None,
        metadata={"help": "stop an update's epochs when approx KL > 1.5x this", "min": 0.0},
    )
    kl_coef: float = field(
        default=DEFAULT_KL_COEF,
        metadata={
            "help": "KL coefficient beta the env starts with (the controller moves it)",
            "min": 0.0,
        },
    )
    adaptive_kl: bool = field(default=True, metadata={"help": "Ziegler's adaptive beta"})
    kl_target: float = field(
        default=6.0, metadata={"help": "adaptive KL target (nats/sequence)", "min": 1e-9}
    )
    kl_horizon: int = field(
        default=10_000, metadata={"help": "adaptive KL horizon (sequences)", "min": 1}
    )
    missing_eos_penalty: float | None = field(
        default=-1.0, metadata={"help": "score added to completions that never emit EOS"}
    )
    critic: str = field(
        default="", metadata={"help": "reward model dir for a separate critic", "path": True}
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning)", "min": 0})
    ref_refresh_every: int = field(
        default=0, metadata={"help": "refresh reference every K (0: off)", "min": 0}
    )
    whiten_rewards: bool = field(default=False, metadata={"help": "whiten rewards before GAE"})
    save_every: int = field(
        default=0, metadata={"help": "checkpoint every K iterations (0: end)", "min": 0}
    )
    resume: str = field(
        default="",
        metadata={
            "help": "continue the run saved in this output dir (its checkpoint/), its settings",
            "path": True,
        },
    )
    report_to: Literal["none", "tensorboard", "csv", "wandb"] = field(
        default="none",
        metadata={"help": "where SB3's logger writes the curves (train/, eval/ every iteration)"},
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    dtype: Literal["float32", "bfloat16", "float16"] = field(
        default="float32",
        metadata={
            "help": "precision of the frozen models (reference, reward model, a LoRA "
            "base) and of autocast on GPU; trained weights stay float32"
        },
    )
    threads: int = field(
        default=0, metadata={"help": "torch CPU threads (0: torch default)", "min": 0}
    )
    progress: bool = field(default=False, metadata={"help": "one progress bar over all iterations"})
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1: metric tables)", "min": 0})


#: Settings a resumed run may change; the others must be the saved run's.
RESUMABLE = ("iterations", "save_every", "threads", "progress", "verbose", "report_to")


def resumed_config(given: TrainPPOConfig, saved: dict[str, Any]) -> TrainPPOConfig:
    """The saved run's settings, continued in ``given.resume``.

    Flags set on the resuming command line (to a value other than the default) replace the
    saved ones for the settings in :data:`RESUMABLE` (``--iterations 50`` trains on to
    iteration 50); any other setting must equal the saved one.

    Args:
        given: the resuming command line's config.
        saved: the config the run was started with (``asdict``), from its checkpoint.

    Raises:
        ValueError: naming each flag that differs from the saved run's.
    """
    known = {f.name for f in fields(TrainPPOConfig)}
    config = TrainPPOConfig(**{k: v for k, v in saved.items() if k in known})
    defaults, conflicts = TrainPPOConfig(), []
    for name in sorted(known - {"resume", "output_dir"}):
        value = getattr(given, name)
        if value == getattr(defaults, name) or value == getattr(config, name):
            continue
        if name in RESUMABLE:
            setattr(config, name, value)
        else:
            flag = "--" + name.replace("_", "-")
            conflicts.append(f"{flag} {value!r} (the run has {getattr(config, name)!r})")
    if conflicts:
        raise ValueError(
            "a resumed run keeps its settings, but " + "; ".join(conflicts) + " differ. Drop "
            "those flags, or start a new run in another --output-dir."
        )
    config.resume = config.output_dir = given.resume
    return config

"""The settings of a PPO training job, one documented field each (``rlhf-gym train-ppo``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlhf_gym.envs.rewards import DEFAULT_KL_COEF


@dataclass
class TrainPPOConfig:
    """Settings of one PPO job on the token env; each field is a ``train-ppo`` flag."""

    policy: str = field(
        default="", metadata={"help": "policy model name or path (default: toy SFT)"}
    )
    reference: str = field(default="", metadata={"help": "reference model (default: the policy)"})
    tokenizer: str = field(
        default="", metadata={"help": "tokenizer (default: toy or the policy's)"}
    )
    reward: str = field(
        default="gold", metadata={"help": "'gold' (toy utility) or module:function"}
    )
    reward_model: str = field(
        default="", metadata={"help": "trained reward model dir (over --reward)"}
    )
    prompts: str = field(default="", metadata={"help": "training prompts file, one per line (toy)"})
    eval_prompts: str = field(default="", metadata={"help": "held-out prompts file (toy held-out)"})
    eval_per_prompt: int = field(default=32, metadata={"help": "held-out samples per eval prompt"})
    out_dir: str = field(default="runs/ppo", metadata={"help": "where curves and checkpoints go"})
    toy_dir: str = field(default="", metadata={"help": "toy artifacts dir (default: its cache)"})
    world_seed: int = field(default=0, metadata={"help": "toy world seed"})
    seed: int = field(default=0, metadata={"help": "agent and env seed"})
    iterations: int = field(default=25, metadata={"help": "PPO iterations (rollout + update)"})
    num_envs: int = field(default=32, metadata={"help": "parallel episodes (rows)"})
    n_steps: int = field(
        default=0, metadata={"help": "tokens per env per rollout (0: max_new_tokens)"}
    )
    max_new_tokens: int = field(default=48, metadata={"help": "completion budget"})
    max_prompt_tokens: int = field(default=8, metadata={"help": "prompt budget"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    learning_rate: float = field(default=1e-4, metadata={"help": "Adam learning rate (eps 1e-5)"})
    n_epochs: int = field(default=4, metadata={"help": "PPO epochs per rollout"})
    batch_size: int = field(default=8, metadata={"help": "sequences per minibatch"})
    clip_range: float = field(default=0.2, metadata={"help": "PPO ratio clip"})
    vf_coef: float = field(default=0.1, metadata={"help": "value loss coefficient"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    target_kl: float | None = field(
        default=None, metadata={"help": "stop an update's epochs when approx KL > 1.5x this"}
    )
    kl_coef: float = field(
        default=DEFAULT_KL_COEF,
        metadata={"help": "KL coefficient beta the env starts with (the controller moves it)"},
    )
    adaptive_kl: bool = field(default=True, metadata={"help": "Ziegler's adaptive beta"})
    kl_target: float = field(default=6.0, metadata={"help": "adaptive KL target (nats/sequence)"})
    kl_horizon: int = field(default=10_000, metadata={"help": "adaptive KL horizon (sequences)"})
    missing_eos_penalty: float | None = field(
        default=-1.0, metadata={"help": "score added to completions that never emit EOS"}
    )
    critic: str = field(default="", metadata={"help": "reward model dir for a separate critic"})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning)"})
    ref_refresh_every: int = field(
        default=0, metadata={"help": "refresh reference every K (0: off)"}
    )
    whiten_rewards: bool = field(default=False, metadata={"help": "whiten rewards before GAE"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every K iterations (0: end)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch default)"})
    progress_bar: bool = field(default=False, metadata={"help": "SB3 progress bar"})
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1: metric tables)"})

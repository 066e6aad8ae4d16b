"""What a finished PPO job leaves in its output folder, and how other commands find it.

``OUTPUT_DIR/final`` is the agent's checkpoint (docs/checkpoints.md) with the job's config in its
``extra``. Its ``policy/`` folder holds the tokenizer and a generation config that stops where
the env's episodes stop, so it loads with plain ``AutoModelForCausalLM.from_pretrained`` and
``AutoTokenizer.from_pretrained``. With LoRA, ``policy/`` holds the adapters (what a resume
needs; they load with peft onto the base model) and ``final/merged/`` the full model with the
adapters merged in, which loads with plain transformers like a full fine-tune's ``policy/``.

:func:`find_policy` turns a run's output folder into that policy folder (``final/merged``,
``final/policy``, else ``checkpoint/policy``), so ``rlhf-gym evaluate --policy OUTPUT_DIR``
works, and :func:`run_config` reads the job's settings back.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rlhf_gym.distributed import is_main_process
from rlhf_gym.lm.loading import generation_config
from rlhf_gym.training.config import TrainPPOConfig
from rlhf_gym.training.loop import CHECKPOINT_DIR

FINAL_DIR = "final"
MERGED_DIR = "merged"
POLICY_DIR = "policy"  # the checkpoint's policy folder (agents.common.checkpoint.POLICY_DIR)


def save_final(agent: Any, config: TrainPPOConfig) -> Path:
    """Save the trained agent to ``OUTPUT_DIR/final`` (and, with LoRA, the merged model).

    Merging changes the LoRA policy's weights in place, so call this last.

    Returns:
        The folder that loads with plain transformers (``final/policy`` or ``final/merged``).
    """
    final = Path(config.output_dir) / FINAL_DIR
    agent.save(final, extra={"config": asdict(config)})
    if not agent.policy.has_lora:
        return final / POLICY_DIR
    if not is_main_process():  # agent.save is collective; the merge and its files are rank 0's
        return final / MERGED_DIR
    return write_merged(agent.policy, final / MERGED_DIR)


def write_merged(policy: Any, folder: Path) -> Path:
    """Merge a LoRA policy's adapters into its base weights (in place) and save the result."""
    merged = policy.model.merge_and_unload()
    merged.save_pretrained(folder)
    if policy.tokenizer is not None:
        policy.tokenizer.save_pretrained(folder)
        generation_config(merged, policy.tokenizer).save_pretrained(folder)
    return folder


def find_policy(path: str | os.PathLike) -> str:
    """The policy folder of a run's output folder, or ``path`` itself when it is no run."""
    root = Path(path)
    for candidate in (
        root / FINAL_DIR / MERGED_DIR,
        root / FINAL_DIR / POLICY_DIR,
        root / CHECKPOINT_DIR / POLICY_DIR,
    ):
        if candidate.is_dir():
            return os.fspath(candidate)
    return os.fspath(path)


def run_config(path: str | os.PathLike) -> TrainPPOConfig | None:
    """The settings of the train-ppo run whose output folder is ``path``, or None."""
    from rlhf_gym.agents.common.checkpoint import read_checkpoint_extra

    for name in (FINAL_DIR, CHECKPOINT_DIR):
        folder = Path(path) / name
        if folder.is_dir():
            saved = read_checkpoint_extra(folder).get("config")
            if saved is not None:
                known = TrainPPOConfig.__dataclass_fields__
                return TrainPPOConfig(**{k: v for k, v in saved.items() if k in known})
    return None

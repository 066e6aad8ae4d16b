"""``import rlhf_gym`` registers the ids without torch; models and tokenizer may be paths."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import rlhf_gym  # noqa: F401  (registers the ids)
from env_helpers import PROMPTS, tiny_gpt2


def test_import_registers_the_ids_without_importing_torch() -> None:
    code = ("import sys, gymnasium, rlhf_gym\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert {'rlhf_gym/TextGeneration-v0', 'rlhf_gym/ToyTextGeneration-v0'} "
            "<= set(gymnasium.registry)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_make_takes_the_reference_and_tokenizer_as_folders(tokenizer, tmp_path) -> None:
    tiny_gpt2(len(tokenizer)).save_pretrained(tmp_path / "ref")
    tokenizer.save_pretrained(tmp_path / "ref")
    env = gym.make("rlhf_gym/TextGeneration-v0", reference_model=str(tmp_path / "ref"),
                   tokenizer=str(tmp_path / "ref"), prompts=PROMPTS, kl_reward="ref_logprob",
                   max_prompt_tokens=6, max_new_tokens=3, device="cpu")
    env.reset(seed=0)
    _, reward, *_ = env.step(5)
    assert reward < 0  # β·log π_ref of the token, from the model loaded by path

"""Several stop ids end an episode: the chat Llama stand-in stops on ``</s>`` or ``<|end|>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv
from rlhf_gym.lm.encoding import stop_ids
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

PENALTY = -2.0


def completion_lengths(completions: list[str]) -> np.ndarray:
    return np.array([float(len(c.split())) for c in completions])


def make_env(chat_dir: Path, chat_tokenizer, **kwargs) -> TextGenerationEnv:
    return TextGenerationEnv(
        tokenizer=chat_tokenizer,
        reference_model=chat_dir,
        prompts=["tell me about the cat"],
        reward=lambda prompts, completions: completion_lengths(completions),
        kl_coef=0.0,
        missing_eos_penalty=PENALTY,
        max_prompt_tokens=16,
        max_new_tokens=4,
        device="cpu",
        **kwargs,
    )


def run(env: TextGenerationEnv, actions: list[int]) -> tuple[bool, bool, dict]:
    env.reset(seed=0)
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return terminated, truncated, info


def test_stop_ids_merge_tokenizer_and_generation_config(chat_dir, chat_tokenizer):
    eos, end = chat_tokenizer.eos_token_id, chat_tokenizer.convert_tokens_to_ids("<|end|>")
    model = AutoModelForCausalLM.from_pretrained(chat_dir)
    assert stop_ids(chat_tokenizer, model) == [eos, end]
    assert stop_ids(chat_tokenizer, model.generation_config) == [eos, end]
    assert stop_ids(chat_tokenizer, GenerationConfig(eos_token_id=end)) == [eos, end]
    assert stop_ids(chat_tokenizer) == [eos]
    no_eos = AutoTokenizer.from_pretrained(chat_dir)
    no_eos.eos_token = None
    assert stop_ids(no_eos, model) == [eos, end]
    with pytest.raises(ValueError, match="nor the generation config has an eos token"):
        stop_ids(no_eos)


@pytest.mark.parametrize("stop", ["<|end|>", "</s>"])
def test_either_stop_id_terminates_without_the_eos_penalty(chat_dir, chat_tokenizer, stop):
    env = make_env(chat_dir, chat_tokenizer)
    assert env.unwrapped.batch.stop_ids == [
        chat_tokenizer.eos_token_id,
        chat_tokenizer.convert_tokens_to_ids("<|end|>"),
    ]
    words = chat_tokenizer.convert_tokens_to_ids(["the", "cat"])
    terminated, truncated, info = run(env, [*words, chat_tokenizer.convert_tokens_to_ids(stop)])
    assert terminated and not truncated
    assert info["completion_ids"] == words and info["completion"] == "the cat"
    assert info["eos_penalty"] == 0.0
    assert info["score"] == pytest.approx(2.0)  # the reward saw two words, no stop token


def test_no_stop_is_truncated_and_penalised(chat_dir, chat_tokenizer):
    env = make_env(chat_dir, chat_tokenizer)
    word = chat_tokenizer.convert_tokens_to_ids("cat")
    terminated, truncated, info = run(env, [word] * 4)
    assert truncated and not terminated
    assert info["eos_penalty"] == PENALTY
    assert info["score"] == pytest.approx(4.0 + PENALTY)


def test_vector_env_ends_rows_on_any_stop_id(chat_dir, chat_tokenizer):
    env = TextGenerationVectorEnv(
        3,
        tokenizer=chat_tokenizer,
        reference_model=chat_dir,
        prompts=["the cat"],
        kl_coef=0.0,
        max_prompt_tokens=8,
        max_new_tokens=4,
        device="cpu",
    )
    env.reset(seed=0)
    actions = np.array(chat_tokenizer.convert_tokens_to_ids(["<|end|>", "</s>", "cat"]))
    _, _, terminated, truncated, _ = env.step(actions)
    assert terminated.tolist() == [True, True, False] and not truncated.any()

"""Fixtures for agent tests: a word tokenizer, tiny LMs from config, the text VecEnv."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast
from word_lm import tiny_lm as shared_tiny_lm
from word_lm import word_tokenizer as shared_word_tokenizer

WORDS = [
    "review",
    "of",
    "the",
    "phone",
    "lamp",
    "book",
    ":",
    "it",
    "is",
    "a",
    "good",
    "great",
    "bad",
    "awful",
    "fine",
    "nice",
    "very",
    "not",
    "and",
    ".",
    "!",
]
PROMPTS = ["review of the phone :", "review of the lamp :", "review of the book :", "it is"]
GOOD = {"good", "great", "nice", "fine"}


def word_tokenizer() -> PreTrainedTokenizerFast:
    """<pad>=0, <eos>=1, <unk>=2, then WORDS; vocabulary 26."""
    return shared_word_tokenizer(WORDS)


def tiny_lm(arch: str = "gpt2", vocab_size: int = 26, seed: int = 0) -> PreTrainedModel:
    """A 2-layer causal LM from config, dropout off."""
    return shared_tiny_lm(arch, vocab_size, seed)


def good_word_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    """Fraction of words in the completion that are GOOD words (a learnable toy reward)."""
    return np.array([np.mean([w in GOOD for w in c.split()] or [0.0]) for c in completions])


def make_env(
    policy: PreTrainedModel,
    num_envs: int = 4,
    max_new_tokens: int = 6,
    reference: torch.nn.Module | None = None,
    **kwargs,
):
    """A TextGenerationVecEnv whose reference is ``reference`` or a frozen copy of ``policy``."""
    from rlhf_gym.envs import TextGenerationVecEnv

    options = {
        "reward": good_word_reward,
        "kl_coef": 0.05,
        "device": "cpu",
        "max_prompt_tokens": 6,
        "max_new_tokens": max_new_tokens,
        **kwargs,
    }
    return TextGenerationVecEnv(
        num_envs,
        tokenizer=word_tokenizer(),
        reference_model=copy.deepcopy(policy) if reference is None else reference,
        prompts=PROMPTS,
        **options,
    )


@pytest.fixture
def lm_factory() -> Callable[..., PreTrainedModel]:
    """``lm_factory(arch, vocab_size=26, seed=0)`` (tests cannot import conftest)."""
    return tiny_lm


@pytest.fixture
def tokenizer_factory() -> Callable[[], PreTrainedTokenizerFast]:
    """``tokenizer_factory()``: the word tokenizer of the test envs."""
    return word_tokenizer


@pytest.fixture
def env_factory() -> Callable:
    """``env_factory(policy_model, num_envs=4, max_new_tokens=6, **env_kwargs)``."""
    return make_env


@pytest.fixture(autouse=True)
def single_threaded(one_thread):
    """Every agent test runs on one torch thread (the root ``one_thread`` fixture)."""


@pytest.fixture
def agent_factory(lm_factory, env_factory) -> Callable:
    """``agent_factory(arch="gpt2", num_envs=4, max_new_tokens=6, env_kwargs=None, **ppo)``."""
    from rlhf_gym.agents.ppo import LMPPO

    def build(
        arch: str = "gpt2",
        num_envs: int = 4,
        max_new_tokens: int = 6,
        env_kwargs: dict | None = None,
        policy_kwargs: dict | None = None,
        **ppo,
    ):
        lm = lm_factory(arch)
        env = env_factory(
            lm, num_envs=num_envs, max_new_tokens=max_new_tokens, **(env_kwargs or {})
        )
        options = {
            "n_steps": max_new_tokens,
            "batch_size": 4,
            "seed": 0,
            "device": "cpu",
            "learning_rate": 1e-3,
            **ppo,
        }
        return LMPPO(
            "LMPolicy", env, policy_kwargs={"model": lm, **(policy_kwargs or {})}, **options
        )

    return build

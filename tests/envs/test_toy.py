"""The registered toy env: no arguments (when the toy build is cached), both check_envs clean."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import rlhf_gym.envs  # noqa: F401  (registers the env ids)
from gymnasium.utils.env_checker import check_env as gym_check_env
from rlhf_gym import toy
from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv
from rlhf_gym.envs.rewards import DEFAULT_KL_COEF
from stable_baselines3.common.env_checker import check_env as sb3_check_env


def test_toy_env_needs_no_arguments_and_passes_both_checkers(toy_kwargs):
    env = gym.make("rlhf_gym/ToyTextGeneration-v0", render_mode="ansi", **toy_kwargs)
    base = env.unwrapped
    assert isinstance(base, TextGenerationEnv)
    # no bound policy: the KL part is paid as β·log π_ref, for actors the env cannot see
    assert base.get_kl_coef() == DEFAULT_KL_COEF and base.batch.models.policy is None
    assert base.batch.kl_reward == "ref_logprob"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(base, skip_render_check=False)
        sb3_check_env(base, warn=True)
    assert [str(w.message) for w in caught] == []


def test_toy_sft_episode_scored_by_gold_utility(toy_kwargs):
    env = gym.make("rlhf_gym/ToyTextGeneration-v0", **toy_kwargs).unwrapped
    obs, info = env.reset(seed=0)
    prompt = info["prompt"]
    assert prompt.startswith("review of the ")
    gold = toy.GoldUtility()
    rng = np.random.default_rng(0)
    policy = env.reference_model  # sample from the SFT model itself
    import torch

    done = False
    while not done:
        ids = torch.as_tensor(obs["input_ids"][obs["attention_mask"] == 1])[None]
        with torch.no_grad():
            probs = torch.softmax(policy(input_ids=ids).logits[0, -1], -1).numpy()
        action = int(rng.choice(len(probs), p=probs / probs.sum()))
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    assert info["score"] == pytest.approx(
        float(gold.score([prompt], [info["completion"]])[0]) + info["eos_penalty"]
    )


def test_toy_vector_env_via_make_vec(toy_kwargs):
    vec = gym.make_vec("rlhf_gym/ToyTextGeneration-v0", num_envs=4, **toy_kwargs)
    assert isinstance(vec.unwrapped, TextGenerationVectorEnv)
    obs, _ = vec.reset(seed=0)
    obs, rewards, *_ = vec.step(np.full(4, 5))
    assert rewards.shape == (4,) and vec.observation_space.contains(obs)

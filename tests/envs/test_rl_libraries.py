"""Stock SB3 PPO and sb3-contrib MaskablePPO learn on the env with an easy reward."""

from __future__ import annotations

import numpy as np
import pytest
from env_helpers import PROMPTS, positive_word_reward, tiny_gpt2
from rlhf_gym.envs import TextGenerationVecEnv
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.evaluation import evaluate_policy as maskable_evaluate
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

PPO_ARGS = {"n_steps": 32, "batch_size": 128, "learning_rate": 3e-3, "n_epochs": 4, "seed": 0}


def easy_env(tokenizer) -> VecMonitor:
    """β = 0 (no handover needed), +1 when a positive word appears in 3 tokens."""
    vec = TextGenerationVecEnv(
        8,
        tokenizer=tokenizer,
        reference_model=tiny_gpt2(len(tokenizer)),
        prompts=PROMPTS,
        reward=positive_word_reward,
        max_prompt_tokens=6,
        max_new_tokens=3,
        kl_coef=0.0,
        device="cpu",
    )
    vec.seed(0)
    return VecMonitor(vec)


def mean_return_before_and_after(model, env, steps: int, episodes: int) -> tuple[float, float]:
    """Mean episode return of ``model`` on ``env`` before and after ``steps`` of training."""
    evaluate = maskable_evaluate if isinstance(model, MaskablePPO) else evaluate_policy
    before, _ = evaluate(model, env, n_eval_episodes=episodes, deterministic=False)
    model.learn(total_timesteps=steps)
    after, _ = evaluate(model, env, n_eval_episodes=episodes, deterministic=False)
    print(f"{type(model).__name__}: mean episode return {before:.3f} -> {after:.3f}")
    return before, after


@pytest.mark.slow
@pytest.mark.parametrize("algo", [PPO, MaskablePPO])
def test_stock_algorithms_train_and_mean_reward_rises(tokenizer, algo):
    env = easy_env(tokenizer)
    model = algo("MultiInputPolicy", env, **PPO_ARGS)
    before, after = mean_return_before_and_after(model, env, 3072, 48)
    assert np.isfinite(before) and after > before + 0.2, (before, after)


POSITIVE_TOY_WORDS = {"amazing", "excellent", "perfect", "fantastic", "wonderful", "superior",
                      "great", "lovely", "superb", "impressive", "solid", "sturdy",
                      "good", "nice", "decent", "fine", "pleasant", "handy"}


def positive_toy_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    return np.array([float(any(w in POSITIVE_TOY_WORDS for w in c.split())) for c in completions])


@pytest.mark.slow
@pytest.mark.parametrize("algo", [PPO, MaskablePPO])
def test_stock_algorithms_learn_on_the_no_argument_env(toy_kwargs, algo):
    """The toy env as ``gym.make`` gives it (β·log π_ref per token), with ent_coef = β."""
    from rlhf_gym.envs.toy import toy_env_kwargs

    settings = toy_env_kwargs(**toy_kwargs, reward=positive_toy_reward, max_new_tokens=3)
    assert settings["kl_reward"] == "ref_logprob" and "policy_model" not in settings
    vec = TextGenerationVecEnv(8, **settings, device="cpu")
    vec.seed(0)
    env = VecMonitor(vec)
    model = algo("MultiInputPolicy", env, ent_coef=vec.get_kl_coef(), **PPO_ARGS)
    before, after = mean_return_before_and_after(model, env, 6144, 64)
    assert np.isfinite(before) and after > before + 0.2, (before, after)

"""LMPPO trains through wrapped vector envs: ours (a swapped reward) and SB3's."""

from __future__ import annotations

import time

import numpy as np
from rlhf_gym.agents.ppo import LMPPO
from rlhf_gym.envs.wrappers import RewardScoreVecEnvWrapper
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

CHOSEN = "lamp"


def chosen_word_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    """Pays for every use of one word the policy rarely writes at first."""
    return np.array([c.split().count(CHOSEN) / 4.0 for c in completions])


def chosen_frequency(agent: LMPPO) -> float:
    words = [w for e in agent.tracker.finished for w in e["completion"].split()]
    return words.count(CHOSEN) / max(len(words), 1)


def test_lmppo_learns_a_reward_swapped_in_by_a_wrapper(lm_factory, env_factory) -> None:
    start = time.perf_counter()
    lm = lm_factory("gpt2")
    env = env_factory(lm, num_envs=16, max_new_tokens=4)  # its own reward: good words
    env = RewardScoreVecEnvWrapper(env, chosen_word_reward)
    env = VecNormalize(VecMonitor(env), norm_obs=False, norm_reward=False)
    agent = LMPPO(
        "LMPolicy",
        env,
        n_steps=4,
        batch_size=16,
        learning_rate=1e-2,
        seed=0,
        device="cpu",
        policy_kwargs={"model": lm},
    )
    steps = agent.n_steps * agent.n_envs
    agent.learn(steps)
    before = chosen_frequency(agent)
    for _ in range(14):
        agent.learn(steps, reset_num_timesteps=False)
    after = chosen_frequency(agent)
    print(f"frequency of {CHOSEN!r}: {before:.3f} -> {after:.3f}")
    assert after >= 3 * max(before, 0.02), (before, after)
    assert env.get_kl_coef() == agent.kl_ctl.value  # the controller reached the env through both
    assert time.perf_counter() - start < 60

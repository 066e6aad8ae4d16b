"""SB3's own callbacks work with LMPPO and our envs, as documented."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.callbacks import EvalCallback


def test_eval_callback_on_a_ref_logprob_eval_env(agent_factory, env_factory, lm_factory) -> None:
    """An eval env in kl_reward="ref_logprob" mode needs no log-prob handover from SB3."""
    agent = agent_factory(num_envs=4, max_new_tokens=4)
    eval_env = env_factory(
        lm_factory("gpt2"), num_envs=2, max_new_tokens=4, kl_reward="ref_logprob"
    )
    callback = EvalCallback(eval_env, n_eval_episodes=4, eval_freq=agent.n_steps, verbose=0)
    agent.learn(2 * agent.n_steps * agent.n_envs, callback=callback)
    assert callback.n_calls == 2 * agent.n_steps
    assert np.isfinite(callback.last_mean_reward) and np.isfinite(callback.best_mean_reward)


def test_episode_statistics_without_vecmonitor(agent_factory) -> None:
    """The VecEnv face reports Monitor's ``info["episode"]``: SB3 logs rollout/ep_rew_mean."""
    agent = agent_factory(num_envs=4, max_new_tokens=4)
    env = agent.get_env()
    env.reset()
    sums = np.zeros(env.num_envs)
    checked = 0
    for _ in range(12):
        env.set_policy_logprobs(np.full(env.num_envs, -3.0))
        _, rewards, dones, infos = env.step(np.full(env.num_envs, 5))
        sums += rewards
        for row in np.flatnonzero(dones):
            assert infos[row]["episode"]["r"] == pytest.approx(sums[row], abs=1e-4)
            assert infos[row]["episode"]["l"] == 4  # never EOS: truncated at max_new_tokens
            sums[row] = 0.0
            checked += 1
    assert checked == 12
    agent.learn(agent.n_steps * agent.n_envs)
    assert len(agent.ep_info_buffer) > 0


def test_checkpoint_callback_saves_loadable_checkpoints(agent_factory, tmp_path) -> None:
    from rlhf_gym.agents.ppo import LMPPO
    from stable_baselines3.common.callbacks import CheckpointCallback

    agent = agent_factory(num_envs=4, max_new_tokens=4)
    callback = CheckpointCallback(save_freq=agent.n_steps, save_path=str(tmp_path))
    agent.learn(2 * agent.n_steps * agent.n_envs, callback=callback)
    saved = sorted(tmp_path.glob("rl_model_*_steps*"))
    assert len(saved) == 2
    loaded = LMPPO.load(saved[-1], env=agent.get_env(), device="cpu")
    assert loaded.num_timesteps == agent.num_timesteps

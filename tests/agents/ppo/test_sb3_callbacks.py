"""SB3's own callbacks work with LMPPO and our envs, as documented."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import EvalCallback


def test_eval_callback_on_a_ref_logprob_eval_env(agent_factory, env_factory, lm_factory) -> None:
    """An eval env in kl_reward="ref_logprob" mode needs no log-prob handover from SB3."""
    agent = agent_factory(num_envs=4, max_new_tokens=4)
    eval_env = env_factory(lm_factory("gpt2"), num_envs=2, max_new_tokens=4,
                           kl_reward="ref_logprob")
    callback = EvalCallback(eval_env, n_eval_episodes=4, eval_freq=agent.n_steps, verbose=0)
    agent.learn(2 * agent.n_steps * agent.n_envs, callback=callback)
    assert callback.n_calls == 2 * agent.n_steps
    assert np.isfinite(callback.last_mean_reward) and np.isfinite(callback.best_mean_reward)

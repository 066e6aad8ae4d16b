"""Episode-aligned rollouts (the LM agents' default): one whole episode per env per rollout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ppo_helpers import ForwardCounter, collect, critic_agent, teacher_forced

# 8 rows of up to 12 tokens from a random 26-word LM: with seed 0 some rows stop early
SHAPE = {"num_envs": 8, "max_new_tokens": 12}


def test_rollout_holds_one_whole_episode_per_env(agent_factory) -> None:
    agent = agent_factory("gpt2", **SHAPE)
    lengths: dict[int, int] = {}

    def record(locals_, _globals) -> bool:
        for row, info in enumerate(locals_["infos"]):
            if "episode" in info:
                lengths[row] = info["episode"]["l"]
        return True

    from stable_baselines3.common.callbacks import ConvertCallback

    _, callback = agent._setup_learn(agent.n_steps * agent.n_envs, ConvertCallback(record))
    assert agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)
    buffer = agent.rollout_buffer
    assert buffer.segments == [(env, 0, lengths[env]) for env in range(agent.n_envs)]
    assert min(lengths.values()) < agent.n_steps, "seed 0 should stop a row early"
    assert agent.env.at_round_start() and agent._last_episode_starts.all()
    counted = buffer.counted
    # the waiting steps count for nothing: no reward, value, advantage or return
    for name in ("rewards", "values", "advantages", "returns"):
        assert not getattr(buffer, name)[~counted].any(), name
    np.testing.assert_allclose(buffer.advantages[counted].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(buffer.advantages[counted].std(), 1.0, atol=1e-4)
    for batch, log_prob, values in teacher_forced(agent):
        mask = batch.token_mask
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], atol=1e-4, rtol=0)
        torch.testing.assert_close(values[mask], batch.old_values[mask], atol=1e-4, rtol=0)


def test_gae_stops_at_each_episodes_end(agent_factory) -> None:
    agent = agent_factory("gpt2", gae_lambda=1.0, **SHAPE)
    agent.rollout_buffer.whiten_advantages = False
    collect(agent)
    buffer = agent.rollout_buffer
    for env, _, end in buffer.segments:  # gamma = lambda = 1: the return is the reward to go
        to_go = np.cumsum(buffer.rewards[:end, env][::-1])[::-1]
        np.testing.assert_allclose(buffer.returns[:end, env], to_go, atol=1e-5)


def test_forward_counts_and_finished_rows_leave_the_batch(agent_factory) -> None:
    agent = agent_factory("gpt2", n_epochs=2, batch_size=3, **SHAPE)
    _, callback = agent._setup_learn(agent.n_steps * agent.n_envs, None)  # resets the env
    policy = ForwardCounter(agent.policy.model)
    reference = ForwardCounter(agent.env.reference_model)
    assert agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)
    lengths = agent.rollout_buffer.lengths
    steps = int(lengths.max())
    # per token: one policy forward and one reference forward, none for the bootstrap
    assert policy.calls == agent._rollout_state.actor.num_forwards == steps
    assert reference.calls == steps
    # a finished row is in no later forward: rows computed <= what the live rows need
    assert policy.rows < steps * agent.n_envs
    assert reference.rows < steps * agent.n_envs
    policy.calls = policy.rows = 0
    agent.train()
    # per sequence: one policy forward per epoch, over exactly n_envs sequences
    assert agent.rollout_buffer.num_sequences == agent.n_envs
    assert policy.rows == agent.n_epochs * agent.n_envs
    assert policy.calls == agent.n_epochs * int(np.ceil(agent.n_envs / agent.batch_size))


def test_critic_runs_once_per_sequence(
    agent_factory, lm_factory, tokenizer_factory, tmp_path
) -> None:
    agent = critic_agent(agent_factory, lm_factory, tokenizer_factory, tmp_path, **SHAPE)
    critic = ForwardCounter(agent.policy.critic_trunk)
    collect(agent)
    assert critic.rows == agent.n_envs
    assert critic.calls == int(np.ceil(agent.n_envs / agent.batch_size))
    for batch, _, values in teacher_forced(agent):
        mask = batch.token_mask
        torch.testing.assert_close(values[mask], batch.old_values[mask], atol=1e-5, rtol=0)


def test_a_round_counts_its_whole_budget(agent_factory) -> None:
    agent = agent_factory("gpt2", n_steps=15, **SHAPE)
    agent.learn(agent.n_steps * agent.n_envs * 2)
    assert agent.num_timesteps == agent.n_steps * agent.n_envs * 2
    assert agent._n_rollouts == 2


def test_budget_and_mode_are_checked(agent_factory, lm_factory, env_factory) -> None:
    from rlhf_gym.agents.ppo import LMPPO

    with pytest.raises(ValueError, match="n_steps=4 < the env's max_new_tokens=6"):
        agent_factory(n_steps=4)
    fixed = agent_factory(n_steps=4, episode_aligned=False)  # SB3's rollouts: any budget
    assert not fixed.env.rounds
    lm = lm_factory("gpt2")
    env = env_factory(lm, rounds=True)
    with pytest.raises(ValueError, match="episode_aligned=False runs SB3's fixed"):
        LMPPO("LMPolicy", env, episode_aligned=False, policy_kwargs={"model": lm}, device="cpu")
    assert LMPPO("LMPolicy", env, policy_kwargs={"model": lm}, device="cpu").n_steps == 6


def test_fixed_steps_mode_carries_episodes(agent_factory) -> None:
    agent = agent_factory("gpt2", num_envs=3, max_new_tokens=5, n_steps=7, episode_aligned=False)
    collect(agent)
    # 7 steps of at most 5-token episodes: every column holds more than one segment
    assert agent.rollout_buffer.num_sequences > agent.n_envs
    assert agent.rollout_buffer.lengths is None

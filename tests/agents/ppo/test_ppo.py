from __future__ import annotations

import numpy as np
import pytest
import torch
from ppo_helpers import ForwardCounter, collect, critic_agent, teacher_forced


@pytest.mark.parametrize("arch", ["gpt2", "llama", "neox"])
def test_one_iteration_per_architecture(agent_factory, arch: str) -> None:
    agent = agent_factory(arch)
    before = [p.detach().clone() for p in agent.policy.model.parameters()]
    agent.learn(agent.n_steps * agent.n_envs)
    after = list(agent.policy.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    for key in (
        "objective/kl",
        "objective/scores",
        "policy/approxkl",
        "policy/clipfrac",
        "loss/policy",
        "loss/value",
        "val/ratio",
        "objective/kl_coef",
        "objective/response_length",
        "time/rollout_s",
        "time/update_s",
        "objective/entropy",
        "objective/rlhf_reward",
    ):
        assert np.isfinite(agent.last_metrics[key]), key


def test_rollout_logprobs_match_teacher_forced_forward(agent_factory) -> None:
    agent = agent_factory("llama", num_envs=3, max_new_tokens=5, n_steps=7, episode_aligned=False)
    collect(agent)
    for batch, log_prob, values in teacher_forced(agent):
        mask = batch.token_mask
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], atol=1e-4, rtol=0)
        torch.testing.assert_close(values[mask], batch.old_values[mask], atol=1e-4, rtol=0)
    # 7 steps of 5-token episodes: every env column holds more than one segment
    assert agent.rollout_buffer.num_sequences > agent.n_envs


def test_forward_counts_rollout_and_update(agent_factory) -> None:
    agent = agent_factory(
        "gpt2", num_envs=4, max_new_tokens=6, n_steps=6, n_epochs=2, batch_size=3,
        episode_aligned=False,
    )  # fmt: skip
    counter = ForwardCounter(agent.policy.model)
    collect(agent)
    # one cached forward per vector step, none to bootstrap when every episode ended with it
    rollout_calls = counter.calls
    assert agent._rollout_state.actor.num_forwards == rollout_calls
    assert rollout_calls == agent.n_steps + (0 if agent._last_episode_starts.all() else 1)
    counter.calls = counter.rows = 0
    agent.train()
    sequences = agent.rollout_buffer.num_sequences
    assert counter.rows == agent.n_epochs * sequences
    assert counter.calls == agent.n_epochs * int(np.ceil(sequences / agent.batch_size))


def test_kl_coefficient_drives_env(agent_factory) -> None:
    agent = agent_factory(env_kwargs={"kl_coef": 0.3}, kl_target=6.0, kl_horizon=100)
    assert agent.env.get_kl_coef() == pytest.approx(0.3)
    agent.learn(agent.n_steps * agent.n_envs)
    metrics = agent.last_metrics
    # first rollout: policy == reference, so KL is 0 and the error clips at -0.2
    assert metrics["objective/kl"] == pytest.approx(0.0, abs=1e-5)
    expected = 0.3 * (1 - 0.2 * metrics["objective/episodes"] / 100)
    assert agent.env.get_kl_coef() == pytest.approx(expected)
    assert agent.kl_ctl.value == pytest.approx(expected)


def test_fixed_kl_keeps_the_env_beta(agent_factory) -> None:
    agent = agent_factory(env_kwargs={"kl_coef": 0.3}, adaptive_kl=False, learning_rate=1e-2)
    for _ in range(2):  # the second rollout has a KL: an adaptive controller would move beta
        agent.learn(agent.n_steps * agent.n_envs, reset_num_timesteps=False)
        assert agent.env.get_kl_coef() == 0.3
        assert agent.last_metrics["objective/kl_coef"] == 0.3
    assert agent.last_metrics["objective/kl"] != 0.0


def test_adaptive_kl_needs_a_positive_env_beta(agent_factory) -> None:
    with pytest.raises(ValueError, match="env's kl_coef"):
        agent_factory(env_kwargs={"kl_coef": 0.0})
    assert agent_factory(env_kwargs={"kl_coef": 0.0}, adaptive_kl=False).kl_ctl.value == 0.0


def test_reference_refresh_copies_policy(agent_factory) -> None:
    agent = agent_factory(ref_refresh_every=1)
    agent.learn(agent.n_steps * agent.n_envs)
    reference = agent.env.reference_model.state_dict()
    for name, tensor in agent.policy.model.state_dict().items():
        torch.testing.assert_close(reference[name], tensor)


def test_predict_on_env_observations(agent_factory) -> None:
    agent = agent_factory()
    obs = agent.env.reset()
    actions, state = agent.predict(obs, deterministic=True)
    assert actions.shape == (agent.n_envs,) and state is None
    cached_state = agent.policy.initial_state(agent.n_envs)
    cached, cached_state = agent.policy.predict(obs, state=cached_state, deterministic=True)
    np.testing.assert_array_equal(actions, cached)
    agent.env.set_kl_coef(0.0)  # stepping by hand: no log-prob handover
    obs, *_ = agent.env.step(actions)
    again, _ = agent.policy.predict(obs, state=cached_state, deterministic=True)
    np.testing.assert_array_equal(again, agent.predict(obs, deterministic=True)[0])


def test_progress_bar_works(agent_factory) -> None:
    agent = agent_factory()
    agent.learn(agent.n_steps * agent.n_envs, progress_bar=True)
    assert agent.num_timesteps == agent.n_steps * agent.n_envs


def test_critic_forward_counts(agent_factory, lm_factory, tokenizer_factory, tmp_path) -> None:
    # 7 steps of 5-token episodes: fragments, and episodes the rollout cuts (bootstrapped)
    agent = critic_agent(
        agent_factory, lm_factory, tokenizer_factory, tmp_path,
        num_envs=3, max_new_tokens=5, n_steps=7, n_epochs=2, batch_size=2, episode_aligned=False,
    )  # fmt: skip
    policy = agent.policy
    critic, actor = ForwardCounter(policy.critic_trunk), ForwardCounter(policy.model)
    collect(agent)
    buffer = agent.rollout_buffer
    sequences = buffer.num_sequences
    assert sequences > agent.n_envs
    # no critic forward per token: one teacher-forced forward per batch_size sequences
    assert critic.calls == int(np.ceil(sequences / agent.batch_size)) and critic.rows == sequences
    assert actor.calls == agent.n_steps  # no policy forward for the bootstrap either
    critic.calls = critic.rows = actor.calls = actor.rows = 0
    agent.train()
    per_epoch = int(np.ceil(sequences / agent.batch_size))
    assert critic.calls == actor.calls == agent.n_epochs * per_epoch
    assert critic.rows == actor.rows == agent.n_epochs * sequences


def test_critic_values_match_teacher_forced_critic(
    agent_factory, lm_factory, tokenizer_factory, tmp_path
) -> None:
    agent = critic_agent(
        agent_factory, lm_factory, tokenizer_factory, tmp_path,
        num_envs=3, max_new_tokens=5, n_steps=7, batch_size=2, episode_aligned=False,
    )  # fmt: skip
    collect(agent)
    buffer = agent.rollout_buffer
    assert np.isfinite(buffer.values).all()
    for batch, _, values in teacher_forced(agent):
        mask = batch.token_mask
        torch.testing.assert_close(values[mask], batch.old_values[mask], atol=1e-5, rtol=0)
    with torch.no_grad():  # the bootstrap: the critic on the env's last observation
        obs, _ = agent.policy.obs_to_tensor(agent._last_obs)
        expected = agent.policy.predict_values(obs)[:, 0].numpy()
    cut = ~agent._last_episode_starts
    assert cut.any(), "the rollout should cut an episode"
    # gamma = 1, no reward whitening: the last step's return is its reward plus the bootstrap
    bootstrap = buffer.returns[-1] - buffer.rewards[-1]
    np.testing.assert_allclose(bootstrap[cut], expected[cut], atol=1e-5)

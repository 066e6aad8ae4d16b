"""LMGRPO and LMRLOO on a grouped token env, with tiny LMs built from config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rlhf_gym.agents.group import LMGRPO, LMRLOO


class ForwardCounter:
    """Counts calls and sequences (rows of input_ids) through a model's forward."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls, self.rows = 0, 0
        model.register_forward_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs, output) -> None:
        self.calls += 1
        self.rows += int(kwargs["input_ids"].shape[0])


@pytest.fixture
def group_factory(lm_factory, env_factory):
    """``group_factory(cls, num_envs=8, group_size=4, env_kwargs=None, **agent)``."""

    def build(cls, num_envs=8, group_size=4, max_new_tokens=6, env_kwargs=None, seed=0, **agent):
        lm = lm_factory("gpt2", seed=seed)
        kl = 0.0 if cls is LMGRPO else 0.05
        options = {"kl_coef": kl, "group_size": group_size, **(env_kwargs or {})}
        env = env_factory(lm, num_envs=num_envs, max_new_tokens=max_new_tokens, **options)
        settings = {"batch_size": 4, "seed": seed, "device": "cpu", "learning_rate": 1e-3}
        return cls("LMPolicy", env, policy_kwargs={"model": lm}, **{**settings, **agent}), lm

    return build


def collect(agent) -> None:
    _, callback = agent._setup_learn(agent.n_steps * agent.n_envs, None)
    assert agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)


@pytest.mark.parametrize("cls", [LMGRPO, LMRLOO])
def test_no_value_model_parameters_are_the_lm(group_factory, cls) -> None:
    agent, lm = group_factory(cls)
    assert agent.policy.value_head is None and agent.policy.critic_trunk is None
    count = sum(p.numel() for p in agent.policy.parameters())
    assert count == sum(p.numel() for p in lm.parameters())


@pytest.mark.parametrize("cls", [LMGRPO, LMRLOO])
def test_forward_counts_rollout_and_update(group_factory, cls) -> None:
    agent, _ = group_factory(cls, n_epochs=2, batch_size=3)
    counter = ForwardCounter(agent.policy.model)
    collect(agent)
    buffer = agent.rollout_buffer
    steps = int(buffer.lengths.max())  # the round's longest completion
    assert counter.calls == agent._rollout_state.actor.num_forwards == steps
    assert buffer.num_sequences == agent.n_envs  # one completion per row, whole groups
    counter.calls = counter.rows = 0
    agent.train()
    assert counter.rows == agent.n_epochs * agent.n_envs
    assert counter.calls == agent.n_epochs * int(np.ceil(agent.n_envs / agent.batch_size))


def test_rollout_rewards_advantages_and_ref_logprobs(group_factory) -> None:
    agent, _ = group_factory(LMRLOO, env_kwargs={"kl_coef": 0.2})
    collect(agent)
    buffer = agent.rollout_buffer
    returns = [ep["rlhf_reward"] for ep in sorted(agent.tracker.finished, key=lambda e: e["env"])]
    np.testing.assert_allclose(buffer.sequence_rewards, returns, atol=1e-5)  # score + KL reward
    expected = LMRLOO.advantages(buffer.sequence_rewards.reshape(-1, 4)).reshape(-1)
    for batch in buffer.get_sequences(8, np.random.default_rng(0)):  # all 8 completions
        mask = batch.token_mask
        firsts = np.sort(batch.advantages[:, 0].numpy())
        np.testing.assert_allclose(firsts, np.sort(expected), atol=1e-5)
        assert torch.all(batch.advantages == batch.advantages[:, :1] * mask)  # broadcast
        assert torch.all(batch.ref_log_prob[mask] < 0)
        with torch.no_grad():
            log_prob, _, _ = agent.policy.evaluate_sequences(
                batch.input_ids, batch.attention_mask, batch.positions, batch.actions
            )
        torch.testing.assert_close(log_prob[mask], batch.old_log_prob[mask], atol=1e-4, rtol=0)
        # the env's reference is a copy of the untrained policy: its log-probs are the same
        torch.testing.assert_close(batch.ref_log_prob[mask], log_prob[mask], atol=1e-4, rtol=0)


def test_grpo_needs_an_env_without_kl_reward(group_factory) -> None:
    with pytest.raises(ValueError, match="kl_coef=0"):
        group_factory(LMGRPO, env_kwargs={"kl_coef": 0.1})


def test_group_agents_need_groups(group_factory) -> None:
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_factory(LMRLOO, group_size=1)
    with pytest.raises(ValueError, match="n_steps=3 < the env's max_new_tokens=6"):
        group_factory(LMRLOO, n_steps=3)


@pytest.mark.parametrize("cls", [LMGRPO, LMRLOO])
def test_reward_rises(group_factory, cls) -> None:
    agent, _ = group_factory(cls, num_envs=16, group_size=4, learning_rate=3e-3, n_epochs=2)
    scores = []
    for _ in range(12):
        agent.learn(agent.n_steps * agent.n_envs, reset_num_timesteps=False)
        scores.append(agent.last_metrics["objective/scores"])
    assert np.mean(scores[-3:]) > np.mean(scores[:3]) + 0.1, scores
    for key in ("loss/policy", "loss/kl", "policy/approxkl", "objective/group_reward_std"):
        assert np.isfinite(agent.last_metrics[key]), key


@pytest.mark.parametrize("cls", [LMGRPO, LMRLOO])
def test_checkpoint_round_trip(group_factory, cls, tmp_path) -> None:
    agent, _ = group_factory(cls, n_epochs=2)
    agent.learn(agent.n_steps * agent.n_envs)
    agent.save(tmp_path / "ckpt")
    loaded = cls.load(tmp_path / "ckpt", env=agent.env, device="cpu", force_reset=False)
    assert type(loaded) is cls and loaded.policy.value_head is None
    assert loaded.n_epochs == 2 and loaded.batch_size == 4
    if cls is LMGRPO:
        assert loaded.beta == agent.beta == 0.04
    for name, tensor in agent.policy.state_dict().items():
        torch.testing.assert_close(loaded.policy.state_dict()[name], tensor)
    loaded.learn(loaded.n_steps * loaded.n_envs, reset_num_timesteps=False)
    assert np.isfinite(loaded.last_metrics["loss/total"])

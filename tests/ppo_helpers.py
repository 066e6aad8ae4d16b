"""Helpers shared by the PPO agent tests: forward counters, one rollout, teacher forcing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


class ForwardCounter:
    """Counts sequences passed through a model's forward (rows of input_ids per call)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls, self.rows = 0, 0
        self.handle = model.register_forward_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs, output) -> None:
        self.calls += 1
        self.rows += int(kwargs["input_ids"].shape[0])


def collect(agent) -> None:
    """One rollout, as learn() does it."""
    _, callback = agent._setup_learn(agent.n_steps * agent.n_envs, None)
    assert agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)


def teacher_forced(agent) -> Iterator[tuple[Any, torch.Tensor, torch.Tensor]]:
    """Each batch of the rollout's sequences with the policy's teacher-forced log-probs, values."""
    with torch.no_grad():
        for batch in agent.rollout_buffer.get_sequences(64, np.random.default_rng(0)):
            log_prob, values, _ = agent.policy.evaluate_sequences(
                batch.input_ids, batch.attention_mask, batch.positions, batch.actions
            )
            yield batch, log_prob, values


def critic_agent(agent_factory, lm_factory, tokenizer_factory, tmp_path, **ppo):
    """A GPT-2 agent whose critic is a reward model initialised from the SFT policy."""
    from rlhf_gym.reward_models import RewardModel, init_reward_model

    lm_factory("gpt2").save_pretrained(tmp_path / "sft")
    network = init_reward_model(tmp_path / "sft", pad_token_id=0, seed=1)
    RewardModel(network, tokenizer_factory(), device="cpu").save_pretrained(tmp_path / "rm")
    return agent_factory("gpt2", policy_kwargs={"critic": str(tmp_path / "rm")}, **ppo)

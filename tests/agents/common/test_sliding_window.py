"""The policy's cached act path stays exact for sliding-window models.

``policy.initial_state``/``policy.advance`` keep one KV cache for all envs, whose episodes
restart at different times; with a window shorter than an episode, each env's logits must still
equal an uncached forward of its own tokens (``rlhf_gym.lm.attention``).
"""

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)
from word_lm import sliding_config as shared_sliding_config

WINDOW, VOCAB, EOS = 4, 26, 1


def sliding_config(arch: str) -> PretrainedConfig:
    return shared_sliding_config(arch, VOCAB, WINDOW, EOS)


def sliding_agent(arch: str, env_factory):
    """LMPPO on a tiny sliding-window LM, 3 envs of up to 10 new tokens, temperature 0.8."""
    from rlhf_gym.agents.ppo import LMPPO

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(sliding_config(arch)).eval()
    env = env_factory(lm, num_envs=3, max_new_tokens=10, temperature=0.8)
    policy_kwargs = {"model": lm, "temperature": 0.8}
    return LMPPO(  # fixed rollouts: rows restart mid-state, at different steps
        "LMPolicy", env, policy_kwargs=policy_kwargs, n_steps=10, batch_size=4, seed=0,
        device="cpu", episode_aligned=False,
    )  # fmt: skip


def lone_logprobs(model: PreTrainedModel, ids: list[int], temperature: float) -> torch.Tensor:
    logits = model(torch.tensor([ids])).logits[0, -1].float() / temperature
    return torch.log_softmax(logits, dim=-1)


@pytest.mark.parametrize("arch", ["mistral", "gemma2", "qwen2"])
def test_cached_act_path_matches_a_lone_forward_of_each_env(env_factory, arch):
    agent = sliding_agent(arch, env_factory)
    policy, env = agent.policy, agent.env
    torch.nn.init.normal_(policy.value_head.weight)  # non-zero values depend on the hidden state
    env.set_kl_coef(0.0)  # stepping by hand: no log-prob handover
    state, rng = policy.initial_state(env.num_envs), np.random.default_rng(0)
    obs, starts = env.reset(), np.ones(env.num_envs, dtype=bool)
    restarts: set[int] = set()
    for step in range(36):
        obs_tensor, _ = policy.obs_to_tensor(obs)
        with torch.no_grad():
            cached = policy.advance(state, obs_tensor, starts)
            _, values, _ = policy(obs_tensor)
            for row in range(env.num_envs):
                ids = obs["input_ids"][row][obs["attention_mask"][row] == 1].tolist()
                expected = lone_logprobs(policy.model, ids, policy.temperature)
                got = torch.log_softmax(cached.logits[row], dim=-1)
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(cached.values, values, atol=1e-5, rtol=0)
        actions = np.where(rng.random(3) < 0.12, EOS, rng.integers(3, VOCAB, size=3))
        obs, _, starts, _ = env.step(actions)
        if starts.any():
            restarts.add(step)
    assert len(restarts) >= 4  # envs restart at different times, mid-state
    assert state.actor.num_forwards == 36  # one cached forward per step, resets included

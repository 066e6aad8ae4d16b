"""The KL part of the reward in each mode: exact (handed-over or bound log π) and β·log π_ref.

No mode prices the KL of an actor that differs from the reference as zero: it pays β·log π_ref,
uses the actor's log π, or raises. And the β·log π_ref mode is the same objective: the
Monte-Carlo mean of Σ r under exact KL equals that of Σ r + β·Σ H under β·log π_ref.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from env_helpers import PROMPTS, positive_word_reward, tiny_gpt2
from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv
from rlhf_gym.lm.runner import CachedCausalLM

BETA = 0.5


def kwargs(tokenizer, **overrides) -> dict:
    return {
        "tokenizer": tokenizer,
        "reference_model": tiny_gpt2(len(tokenizer), seed=0),
        "prompts": PROMPTS,
        "reward": positive_word_reward,
        "max_prompt_tokens": 6,
        "max_new_tokens": 4,
        "kl_coef": BETA,
        "device": "cpu",
        **overrides,
    }


def test_ref_logprob_mode_pays_beta_times_reference_logprob(tokenizer) -> None:
    env = TextGenerationEnv(**kwargs(tokenizer, kl_reward="ref_logprob"))
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(5)
    assert not (terminated or truncated) and "kl" not in info
    assert reward == pytest.approx(BETA * info["ref_logprob"]) and reward < 0


def test_exact_mode_uses_the_actors_handed_over_logprob(tokenizer) -> None:
    env = TextGenerationEnv(**kwargs(tokenizer))
    env.reset(seed=0)
    env.set_policy_logprob(-0.25)  # an actor far more sure of this token than the reference
    _, reward, _, _, info = env.step(5)
    assert info["policy_logprob"] == -0.25
    assert reward == pytest.approx(-BETA * (-0.25 - info["ref_logprob"])) and reward < 0


def test_exact_mode_without_the_actors_logprob_raises(tokenizer) -> None:
    env = TextGenerationEnv(**kwargs(tokenizer))
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="ref_logprob"):
        env.step(5)


def test_a_bound_frozen_copy_of_the_reference_is_refused(tokenizer) -> None:
    reference = tiny_gpt2(len(tokenizer), seed=0)
    frozen_copy = tiny_gpt2(len(tokenizer), seed=0).requires_grad_(False)
    with pytest.raises(ValueError, match="frozen copy"):
        TextGenerationEnv(**kwargs(tokenizer, reference_model=reference, policy_model=frozen_copy))


@torch.no_grad()
def returns(env: TextGenerationVectorEnv, policy, episodes: int, seed: int, handover: bool):
    """Per-episode Σ r and Σ_t H(π(·|s_t)) of ``policy`` acting on ``env``."""
    n = env.num_envs
    runner = CachedCausalLM(policy, n)
    generator = torch.Generator().manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    tokens = [obs["input_ids"][r, : obs["attention_mask"][r].sum()].tolist() for r in range(n)]
    logits = runner.advance(tokens, [True] * n).logits
    reward_sums, entropy_sums, out = np.zeros(n), np.zeros(n), []
    while len(out) < episodes:
        log_p = torch.log_softmax(logits, -1)
        actions = torch.multinomial(log_p.exp(), 1, generator=generator)[:, 0]
        if handover:
            env.set_policy_logprobs(log_p.gather(1, actions[:, None])[:, 0].numpy())
        obs, rewards, terminated, truncated, _ = env.step(actions.numpy())
        reward_sums += rewards
        entropy_sums += -(log_p.exp() * log_p).sum(-1).numpy()
        done = terminated | truncated
        tokens, resets = [[int(a)] for a in actions], [False] * n
        for row in np.flatnonzero(done):
            out.append((reward_sums[row], entropy_sums[row]))
            reward_sums[row] = entropy_sums[row] = 0.0
            tokens[row] = obs["input_ids"][row, : obs["attention_mask"][row].sum()].tolist()
            resets[row] = True
        logits = runner.advance(tokens, resets).logits
    return np.array(out[:episodes])


def test_ref_logprob_mode_plus_entropy_bonus_is_the_kl_regularised_objective(tokenizer) -> None:
    policy = tiny_gpt2(len(tokenizer), seed=1)  # a fixed stochastic policy, not the reference
    exact = TextGenerationVectorEnv(256, **kwargs(tokenizer))
    soft = TextGenerationVectorEnv(256, **kwargs(tokenizer, kl_reward="ref_logprob"))
    a = returns(exact, policy, 2048, seed=0, handover=True)[:, 0]
    b_rewards, b_entropy = returns(soft, policy, 2048, seed=1, handover=False).T
    b = b_rewards + BETA * b_entropy
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    print(f"exact {a.mean():.4f}, ref_logprob + beta*H {b.mean():.4f}, se {se:.4f}")
    assert abs(a.mean() - b.mean()) < 3 * se
    assert abs(a.mean() - b_rewards.mean()) > 3 * se  # the entropy half is not negligible here

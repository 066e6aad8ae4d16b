"""Every step's reward terms equal those of separate teacher-forced forwards of its episode.

The env prices each token with cached forwards of rows that start and end at different steps
(restarts, waiting group rows, cache compaction, the one-token step of every live row). Here each
finished episode is priced again, alone, with one full forward per model, and every per-token
value the env returned must match: ``ref_logprob``, ``policy_logprob``, ``kl``, a further KL
term's values, the reward, and the score at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from env_helpers import PROMPTS, positive_word_reward, tiny_gpt2
from identity import teacher_forced_logprobs
from rlhf_gym.envs import TextGenerationVectorEnv
from rlhf_gym.envs.rewards import kl_term
from rlhf_gym.envs.terms import KLTerm

BETA, EXTRA_BETA, STEPS = 0.2, 0.3, 40
PER_TOKEN = ("ref_logprob", "policy_logprob", "kl", "extra_kl", "extra_ref_logprob")

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class Episode:
    """One row's episode as the env reported it, step by step."""

    actions: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PER_TOKEN})
    rewards: list[float] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    score: float = 0.0


def make_env(tokenizer, num_envs: int, group_size: int, temperature: float):
    vocab = len(tokenizer)
    env = TextGenerationVectorEnv(
        num_envs,
        tokenizer=tokenizer,
        reference_model=tiny_gpt2(vocab, seed=0),
        policy_model=tiny_gpt2(vocab, seed=1),
        prompts=PROMPTS,
        reward=positive_word_reward,
        max_prompt_tokens=6,
        max_new_tokens=6,
        kl_coef=BETA,
        kl_estimator="k3",
        temperature=temperature,
        terms=[KLTerm(tiny_gpt2(vocab, seed=2), EXTRA_BETA, name="extra")],
        group_size=group_size,
        device="cpu",
    )
    return env, env.batch.models.policy, env.batch.models.reference, env.batch.terms[-1].model


def actions_at(step: int, num_envs: int, vocab: int, eos: int) -> np.ndarray:
    """Words, and now and then EOS, so episodes end at different times (some steps end none)."""
    rng = np.random.default_rng(step)
    actions = rng.integers(3, vocab, size=num_envs)
    actions[rng.random(num_envs) < 0.12] = eos
    return actions


def roll_out(env, num_envs: int, vocab: int, eos: int) -> tuple[list[Episode], int]:
    """Step ``STEPS`` times: the episodes that ended, and how many steps every row only wrote."""
    env.reset(seed=3)
    open_, done, plain = [Episode() for _ in range(num_envs)], [], 0
    for step in range(STEPS):
        actions = actions_at(step, num_envs, vocab, eos)
        _, rewards, terminated, truncated, info = env.step(actions)
        plain += not (terminated | truncated).any() and not np.any(info.get("waiting", 0))
        for row in range(num_envs):
            if info.get("waiting", np.zeros(num_envs))[row]:
                continue  # a group row that ended waits: its action was ignored
            episode = open_[row]
            episode.actions.append(int(actions[row]))
            episode.rewards.append(float(rewards[row]))
            for key in PER_TOKEN:
                episode.values[key].append(float(info[key][row]))
            if terminated[row] or truncated[row]:
                episode.prompt_ids = list(info["final_info"]["prompt_ids"][row])
                episode.score = float(info["final_info"]["score"][row])
                done.append(episode)
                open_[row] = Episode()
    return done, plain


@pytest.mark.parametrize(("num_envs", "group_size", "temperature"), [(5, 1, 0.7), (4, 2, 1.0)])
def test_every_step_matches_teacher_forced_forwards(
    tokenizer, num_envs: int, group_size: int, temperature: float
) -> None:
    env, policy, reference, extra = make_env(tokenizer, num_envs, group_size, temperature)
    episodes, plain = roll_out(env, num_envs, len(tokenizer), tokenizer.eos_token_id)
    assert len(episodes) >= 3 * num_envs and len({len(e.actions) for e in episodes}) >= 3
    assert plain >= 5  # steps where every row only appended a token (the one-token path)
    for episode in episodes:
        forced = {
            name: teacher_forced_logprobs(model, episode.prompt_ids, episode.actions, temperature)
            for name, model in (("policy", policy), ("ref", reference), ("extra", extra))
        }
        kl = kl_term(forced["policy"], forced["ref"], "k3")
        extra_kl = kl_term(forced["policy"], forced["extra"], "k1")  # KLTerm's default
        want = {
            "ref_logprob": forced["ref"],
            "policy_logprob": forced["policy"],
            "kl": kl,
            "extra_ref_logprob": forced["extra"],
            "extra_kl": extra_kl,
        }
        for key, values in want.items():
            np.testing.assert_allclose(episode.values[key], values, atol=1e-5, err_msg=key)
        rewards = -BETA * kl - EXTRA_BETA * extra_kl
        rewards[-1] += episode.score
        np.testing.assert_allclose(episode.rewards, rewards, atol=1e-5)
        completion = episode.actions[:-1] if episode.actions[-1] == 1 else episode.actions
        text = tokenizer.decode(completion, skip_special_tokens=True)
        assert episode.score == positive_word_reward([""], [text])[0]


def test_one_token_step_equals_the_list_step(tokenizer) -> None:
    """``advance_one`` (the env's per-token step) gives the same floats as ``advance``."""
    env, policy, _, _ = make_env(tokenizer, 3, 1, 1.0)
    runner_a = env.batch._new_runner(policy)
    runner_b = env.batch._new_runner(policy)
    prompts = [[3, 4, 5], [6], [7, 8]]
    widths = []
    with torch.no_grad():
        for step in range(40):  # past the first reserve of columns, restarts and compactions
            if step % 10 == 0:  # every row restarts: masked columns pile up, then compact
                runner_a.advance(prompts, [True] * 3)
                runner_b.advance(prompts, [True] * 3)
            ids = np.array([3 + step % 5, 4, 5 + step % 3])
            got = runner_a.advance_one(ids)
            want = runner_b.advance([[int(i)] for i in ids])
            assert torch.equal(got.logits, want.logits)
            widths.append(runner_a._mask.shape[1])
    assert any(b < a for a, b in zip(widths, widths[1:], strict=False))  # it compacted
    assert runner_a.histories() == runner_b.histories()
    with pytest.raises(ValueError, match="one token for each of 3 rows, got 2"):
        runner_a.advance_one(np.array([3, 4]))


def test_the_restart_forward_waits_and_a_full_reset_never_runs_it(tokenizer) -> None:
    """After a step that ends every episode, a reset drops the new prompts' forward unrun."""
    kwargs = {"prompts": PROMPTS, "max_new_tokens": 2, "kl_coef": 0.0, "device": "cpu"}
    runners = []
    for _ in range(2):
        env = TextGenerationVectorEnv(
            3, tokenizer=tokenizer, reference_model=tiny_gpt2(len(tokenizer)), **kwargs
        )
        env.reset(seed=0)
        runners.append((env, env.batch._runners["ref"]))
        env.step(np.array([5, 6, 7]))
        _, _, _, truncated, _ = env.step(np.array([8, 9, 10]))
        assert truncated.all()
    assert [r.num_forwards for _, r in runners] == [2, 2]  # prompts, step 1; not step 2's yet
    (reset_env, dropped), (going_on, kept) = runners
    reset_env.reset(seed=1)  # a fresh cache: the pending forward is dropped, never run
    assert reset_env.batch._runners["ref"] is not dropped and dropped.num_forwards == 2
    _, _, _, _, info = going_on.step(np.array([5, 5, 5]))  # continuing runs it first
    assert kept.num_forwards == 4 and np.isfinite(info["ref_logprob"]).all()

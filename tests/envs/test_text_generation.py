from __future__ import annotations

import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
import rlhf_gym.envs  # noqa: F401  (registers the env ids)
import torch
from env_helpers import PROMPTS, positive_word_reward, tiny_gpt2
from gymnasium.utils.env_checker import check_env as gym_check_env
from identity import expected_return, teacher_forced_logprobs
from rlhf_gym.envs import TextGenerationEnv
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from word_lm import tiny_causal_lm


def run_episode(env: TextGenerationEnv, actions: list[int], handover=None):
    obs, _ = env.reset(seed=0)
    rewards, info = [], {}
    for t, action in enumerate(actions):
        if handover is not None:
            env.set_policy_logprob(handover[t])
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    return obs, rewards, info, terminated, truncated


def test_spaces_and_observation_layout(env_kwargs, tokenizer):
    env = TextGenerationEnv(**env_kwargs)
    V, W = len(tokenizer), 6 + 5
    assert env.action_space == gym.spaces.Discrete(V)
    assert env.observation_space["input_ids"].shape == (W,)
    assert env.observation_space["input_ids"].dtype == np.int64
    assert int(env.observation_space["input_ids"].high.max()) == V - 1
    obs, info = env.reset(seed=3)
    prompt = tokenizer(info["prompt"])["input_ids"]
    n = len(prompt)
    assert obs["input_ids"][:n].tolist() == prompt
    assert (obs["input_ids"][n:] == tokenizer.pad_token_id).all()
    assert obs["attention_mask"].tolist() == [1] * n + [0] * (W - n)
    obs, *_ = env.step(7)
    assert obs["input_ids"][n] == 7 and obs["attention_mask"][n] == 1
    assert obs["attention_mask"].sum() == n + 1


def test_gymnasium_and_sb3_check_env_pass_without_warnings(env_kwargs):
    env = gym.make("rlhf_gym/TextGeneration-v0", render_mode="ansi", **env_kwargs).unwrapped
    assert isinstance(env, TextGenerationEnv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=False)
        sb3_check_env(env, warn=True)
    assert [str(w.message) for w in caught] == []


def test_make_registered_env_passes_check_env(env_kwargs):
    env = gym.make("rlhf_gym/TextGeneration-v0", **env_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "neox"])
@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_identity_bound_policy(arch, estimator, tokenizer):
    V = len(tokenizer)
    reference, policy = tiny_causal_lm(arch, V, seed=0), tiny_causal_lm(arch, V, seed=1)
    env = TextGenerationEnv(
        tokenizer=tokenizer,
        reference_model=reference,
        policy_model=policy,
        prompts=["review of the phone :"],
        reward=positive_word_reward,
        max_prompt_tokens=6,
        max_new_tokens=8,
        kl_coef=0.3,
        kl_estimator=estimator,
        temperature=0.7,
        device="cpu",
    )
    actions = tokenizer("it is a good phone .")["input_ids"]
    _, rewards, info, terminated, truncated = run_episode(env, actions + [tokenizer.eos_token_id])
    assert terminated and not truncated and info["completion"] == "it is a good phone ."
    prompt = tokenizer("review of the phone :")["input_ids"]
    want = expected_return(
        policy, reference, prompt, actions + [1], 1.0, 0.3, temperature=0.7, estimator=estimator
    )
    assert sum(rewards) == pytest.approx(want, abs=1e-4)
    assert info["score"] == 1.0


def test_identity_handed_over_logprobs(tokenizer):
    V = len(tokenizer)
    reference, policy = tiny_gpt2(V, seed=0), tiny_gpt2(V, seed=5)
    env = TextGenerationEnv(
        tokenizer=tokenizer,
        reference_model=reference,
        prompts=["review of the lamp :"],
        reward=lambda p, c: np.array([len(x.split()) * 0.25 for x in c]),
        max_prompt_tokens=6,
        max_new_tokens=4,
        kl_coef=0.05,
        device="cpu",
    )
    prompt = tokenizer("review of the lamp :")["input_ids"]
    actions = tokenizer("very nice lamp !")["input_ids"]
    handover = teacher_forced_logprobs(policy, prompt, actions, 1.0)
    _, rewards, info, terminated, truncated = run_episode(env, actions, handover)
    assert truncated and not terminated
    want = expected_return(policy, reference, prompt, actions, 1.0, 0.05)
    assert sum(rewards) == pytest.approx(want, abs=1e-4)
    assert info["policy_logprob"] == pytest.approx(handover[-1])


def handover_env(tokenizer) -> TextGenerationEnv:
    """A reset env with no policy model: the log-probs are handed over (β 0.1)."""
    env = TextGenerationEnv(
        tokenizer=tokenizer,
        reference_model=tiny_gpt2(len(tokenizer)),
        prompts=PROMPTS,
        max_new_tokens=4,
        max_prompt_tokens=6,
        kl_coef=0.1,
        device="cpu",
    )
    env.reset(seed=0)
    return env


def test_handover_applies_to_one_step_only(tokenizer):
    env = handover_env(tokenizer)
    env.set_policy_logprob(-2.0)
    *_, info = env.step(5)
    assert info["policy_logprob"] == -2.0
    with pytest.raises(RuntimeError, match="set_policy_logprob.*policy_model"):
        env.step(5)


def test_one_env_takes_both_log_probs_as_scalars(tokenizer):
    env = handover_env(tokenizer)
    env.hand_over_reference(True)
    env.set_policy_logprob(-2.0)
    env.set_reference_logprob(-0.5)
    _, reward, *_, info = env.step(5)
    assert info["ref_logprob"] == -0.5 and info["policy_logprob"] == -2.0
    assert reward == pytest.approx(-0.1 * (-2.0 + 0.5))  # -beta * (log pi - log ref)


def test_beta_zero_without_policy_reports_no_kl_and_no_penalty(tokenizer):
    env = TextGenerationEnv(
        tokenizer=tokenizer,
        reference_model=tiny_gpt2(len(tokenizer)),
        prompts=PROMPTS,
        max_new_tokens=2,
        max_prompt_tokens=6,
        kl_coef=0.0,
        device="cpu",
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(5)
    assert reward == 0.0 and "policy_logprob" not in info and "kl" not in info
    assert info["ref_logprob"] < 0


def test_set_kl_coef_changes_reward_at_run_time(env_kwargs):
    env = TextGenerationEnv(**env_kwargs)
    env.reset(seed=0)
    env.set_kl_coef(0.0)
    assert env.get_kl_coef() == 0.0
    _, reward, _, _, info = env.step(5)
    assert reward == 0.0 and info["kl"] != 0.0
    env.set_kl_coef(2.0)
    _, reward, _, _, info = env.step(6)
    assert reward == pytest.approx(-2.0 * info["kl"])
    with pytest.raises(ValueError, match="kl_coef"):
        env.set_kl_coef(-1.0)


def test_reference_refresh_with_policy_weights_zeroes_kl(env_kwargs):
    env = TextGenerationEnv(**env_kwargs)
    env.reset(seed=0)
    _, _, _, _, info = env.step(5)
    assert abs(info["kl"]) > 1e-3
    env.load_reference_state_dict(env_kwargs["policy_model"].state_dict())
    _, _, _, _, info = env.step(6)  # the mid-episode cache is rebuilt with the new weights
    assert info["kl"] == pytest.approx(0.0, abs=1e-5)


def test_missing_eos_penalty_only_on_truncation(env_kwargs, tokenizer):
    env = TextGenerationEnv(**{**env_kwargs, "missing_eos_penalty": -1.0, "kl_coef": 0.0})
    _, rewards, info, _, truncated = run_episode(env, [5] * 5)
    assert truncated and info["eos_penalty"] == -1.0 and rewards[-1] == -1.0
    _, rewards, info, terminated, _ = run_episode(env, [5, tokenizer.eos_token_id])
    assert terminated and info["eos_penalty"] == 0.0 and rewards[-1] == 0.0
    assert info["completion_ids"] == [5] and tokenizer.eos_token_id not in info["completion_ids"]


def test_render_ansi(env_kwargs):
    env = TextGenerationEnv(render_mode="ansi", **env_kwargs)
    env.reset(seed=0)
    env.step(13)  # "good"
    assert env.render().endswith("▸ good")


def test_prompts_from_a_datasets_column(env_kwargs):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": ["review of the book :"], "id": [0]})
    env = TextGenerationEnv(**{**env_kwargs, "prompts": ds, "prompt_column": "text"})
    _, info = env.reset(seed=0)
    assert info["prompt"] == "review of the book :"
    with pytest.raises(ValueError, match="no column 'prompt'"):
        TextGenerationEnv(**{**env_kwargs, "prompts": ds})


def test_long_prompts_are_left_truncated_with_one_warning(env_kwargs, tokenizer):
    long = "i love it and i love the lamp :"
    with pytest.warns(UserWarning, match="1 of 2 prompts.*last 6 tokens") as caught:
        env = TextGenerationEnv(**{**env_kwargs, "prompts": [long, "it is"]})
    assert len(caught) == 1
    assert env.batch.prompt_ids[0] == tokenizer(long)["input_ids"][-6:]
    with pytest.raises(ValueError, match="max_prompt_tokens=6"):
        TextGenerationEnv(**{**env_kwargs, "prompts": [long], "prompt_truncation": "error"})


def test_bad_actions_and_misuse_raise_clear_errors(env_kwargs, tokenizer):
    env = TextGenerationEnv(**env_kwargs)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(len(tokenizer))
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(-1)
    with pytest.raises(ValueError, match="integer token id"):
        env.step(1.5)
    env.step(tokenizer.eos_token_id)
    with pytest.raises(RuntimeError, match="has ended.*call reset"):
        env.step(5)
    with pytest.raises(ValueError, match="shape \\(1,\\)"):
        env.batch.set_policy_logprobs([0.0, 0.0])
    with pytest.raises(ValueError, match="<= 0"):
        env.set_policy_logprob(0.5)


@pytest.mark.parametrize(
    ("scores", "match"),
    [([float("nan")], "non-finite"), ([float("inf")], "non-finite"), ([1.0, 2.0], "shape")],
)
def test_bad_reward_source_output_raises(env_kwargs, scores, match):
    env = TextGenerationEnv(**{**env_kwargs, "reward": lambda p, c: np.array(scores)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(1)


def test_bad_construction_raises(env_kwargs, tokenizer):
    with pytest.raises(ValueError, match="same object"):
        TextGenerationEnv(**{**env_kwargs, "policy_model": env_kwargs["reference_model"]})
    with pytest.raises(ValueError, match="tokenizer has"):
        TextGenerationEnv(**{**env_kwargs, "reference_model": tiny_gpt2(10), "policy_model": None})
    with pytest.raises(ValueError, match="share the policy's vocabulary"):
        TextGenerationEnv(**{**env_kwargs, "policy_model": tiny_gpt2(len(tokenizer) + 3)})
    with pytest.raises(ValueError, match="kl_estimator"):
        TextGenerationEnv(**{**env_kwargs, "kl_estimator": "k2"})


def test_reference_is_frozen_and_policy_untouched(env_kwargs):
    policy = copy.deepcopy(env_kwargs["policy_model"]).train()
    env = TextGenerationEnv(**{**env_kwargs, "policy_model": policy})
    ref = env.get_wrapper_attr("reference_model")
    assert not ref.training and not any(p.requires_grad for p in ref.parameters())
    assert policy.training and all(p.requires_grad for p in policy.parameters())
    assert env.get_wrapper_attr("max_new_tokens") == 5
    assert env.get_wrapper_attr("eos_token_id") == 1 and env.get_wrapper_attr("pad_token_id") == 0
    assert isinstance(ref.lm_head.weight, torch.Tensor)

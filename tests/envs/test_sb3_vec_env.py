from __future__ import annotations

import numpy as np
import pytest
from rlhf_gym.envs import TextGenerationVecEnv
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

N = 3


def test_step_contract_terminal_observation_and_truncation_flag(env_kwargs, tokenizer):
    vec = TextGenerationVecEnv(N, **env_kwargs)
    vec.seed(0)
    obs = vec.reset()
    assert set(obs) == {"input_ids", "attention_mask"} and obs["input_ids"].shape == (N, 11)
    eos = tokenizer.eos_token_id
    obs, rewards, dones, infos = vec.step(np.array([eos, 5, 5]))
    assert dones.tolist() == [True, False, False] and rewards.dtype == np.float32
    assert infos[0]["TimeLimit.truncated"] is False
    terminal = infos[0]["terminal_observation"]
    assert terminal["attention_mask"].sum() == len(infos[0]["prompt_ids"]) + 1
    assert "terminal_observation" not in infos[1]
    for _ in range(4):
        obs, rewards, dones, infos = vec.step(np.array([5, 5, 5]))
    assert dones.tolist() == [False, True, True]
    assert infos[1]["TimeLimit.truncated"] is True and infos[1]["completion_ids"] == [5] * 5
    assert vec.observation_space.contains({k: v[1] for k, v in obs.items()})


def test_attributes_and_methods_reach_through_sb3_wrappers(env_kwargs):
    vec = VecMonitor(TextGenerationVecEnv(N, **{**env_kwargs, "policy_model": None}))
    assert vec.max_new_tokens == 5 and vec.max_prompt_tokens == 6 and vec.temperature == 1.0
    assert vec.eos_token_id == 1 and vec.pad_token_id == 0 and vec.tokenizer is not None
    assert not vec.reference_model.training
    vec.set_kl_coef(0.25)
    assert vec.get_kl_coef() == 0.25 and vec.get_attr("kl_estimator") == ["k1"] * N
    assert vec.env_method("get_kl_coef", indices=[0, 2]) == [0.25, 0.25]
    vec.reset()
    vec.set_policy_logprobs(np.full(N, -1.5))
    vec.step_async(np.array([5, 6, 7]))
    _, _, _, infos = vec.step_wait()
    assert [i["policy_logprob"] for i in infos] == [-1.5] * N
    vec.load_reference_state_dict(vec.reference_model.state_dict())
    vec.set_attr("kl_reward", "ref_logprob")
    assert vec.get_attr("kl_reward", indices=1) == ["ref_logprob"]
    with pytest.raises(ValueError, match="share one core"):
        vec.set_attr("kl_reward", "kl", indices=[0])
    assert vec.env_is_wrapped(VecNormalize) == [False] * N


def test_action_masks_per_env_for_maskable_ppo(env_kwargs, tokenizer):
    from env_helpers import tiny_gpt2

    vec = TextGenerationVecEnv(N, **env_kwargs, mask_model=tiny_gpt2(len(tokenizer), seed=9))
    vec.reset()
    masks = get_action_masks(vec)  # what MaskablePPO calls: env_method("action_masks")
    assert masks.shape == (N, len(tokenizer)) and masks.dtype == bool
    assert (masks.sum(axis=1) >= 1).all() and (masks.sum(axis=1) < len(tokenizer)).all()
    np.testing.assert_array_equal(masks, vec.action_masks())

from __future__ import annotations

import numpy as np
import pytest
import torch
from env_helpers import tiny_gpt2
from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv, top_p_mask
from rlhf_gym.envs.wrappers import TopPMaskWrapper


def test_top_p_mask_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert top_p_mask(logits, 0.5).tolist() == [[True, False, False, False]]
    assert top_p_mask(logits, 0.7).tolist() == [[True, True, False, False]]
    assert top_p_mask(logits, 1.0).tolist() == [[True, True, True, True]]
    assert top_p_mask(logits, 1.0, valid_vocab=3).tolist() == [[True, True, True, False]]
    with pytest.raises(ValueError, match="top_p"):
        top_p_mask(logits, 0.0)


def test_wrapper_masks_follow_the_episode_and_match_the_vector_env(env_kwargs, tokenizer):
    mask_model = tiny_gpt2(len(tokenizer), seed=9)
    env = TopPMaskWrapper(TextGenerationEnv(**env_kwargs), mask_model, top_p=0.5)
    vec = TextGenerationVectorEnv(1, **env_kwargs, mask_model=mask_model, mask_top_p=0.5)
    env.reset(seed=2)
    vec.reset(seed=2)
    for action in [13, 5, 6]:
        mask = env.get_wrapper_attr("action_masks")()
        assert mask.shape == (len(tokenizer),) and 1 <= mask.sum() < len(tokenizer)
        np.testing.assert_array_equal(mask, vec.action_masks()[0])
        env.step(action)
        vec.step(np.array([action]))


def test_base_env_allows_every_real_token(env_kwargs, tokenizer):
    env = TextGenerationEnv(**env_kwargs)
    env.reset(seed=0)
    assert env.action_masks().all() and env.action_masks().shape == (len(tokenizer),)

"""The env's reference (and bound policy) log-probs stay exact for sliding-window models.

The env keeps one KV cache for all rows, and its rows restart at different times; with a window
shorter than an episode, each row must still get the attention an uncached forward of its own
tokens gives (``rlhf_gym.lm.attention``).
"""

import numpy as np
import pytest
import torch
from env_helpers import PROMPTS, positive_word_reward, word_tokenizer
from rlhf_gym.envs import TextGenerationVecEnv
from transformers import (
    AutoModelForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)
from word_lm import sliding_config as shared_sliding_config

WINDOW, TEMPERATURE, EOS = 4, 0.8, 1


pytestmark = pytest.mark.usefixtures("one_thread")


def sliding_config(arch: str, vocab_size: int) -> PretrainedConfig:
    return shared_sliding_config(arch, vocab_size, WINDOW, EOS)


def sliding_lm(arch: str, vocab_size: int, seed: int) -> PreTrainedModel:
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(sliding_config(arch, vocab_size)).eval()


def lone_logprobs(model: PreTrainedModel, ids: list[int]) -> torch.Tensor:
    """Next-token log-probs of an uncached forward of one row's tokens alone."""
    logits = model(torch.tensor([ids])).logits[0, -1].float() / TEMPERATURE
    return torch.log_softmax(logits, dim=-1)


@pytest.mark.parametrize("arch", ["mistral", "gemma2", "qwen2"])
@torch.no_grad()
def test_ref_and_policy_logprobs_match_a_lone_forward_of_each_row(arch):
    tokenizer = word_tokenizer()
    vocab = len(tokenizer)
    reference, policy = sliding_lm(arch, vocab, seed=0), sliding_lm(arch, vocab, seed=1)
    env = TextGenerationVecEnv(
        3,
        tokenizer=tokenizer,
        reference_model=reference,
        policy_model=policy,
        prompts=PROMPTS,
        reward=positive_word_reward,
        kl_coef=0.1,
        temperature=TEMPERATURE,
        max_prompt_tokens=6,
        max_new_tokens=10,
        device="cpu",
    )
    env.seed(0)
    obs, rng = env.reset(), np.random.default_rng(0)
    endings: set[tuple[int, int]] = set()
    for step in range(40):
        contexts = [
            obs["input_ids"][row][obs["attention_mask"][row] == 1].tolist() for row in range(3)
        ]
        actions = np.where(rng.random(3) < 0.12, EOS, rng.integers(3, vocab, size=3))
        obs, _, dones, infos = env.step(actions)
        for row, context in enumerate(contexts):
            action = int(actions[row])
            expected_ref = lone_logprobs(reference, context)[action].item()
            expected_policy = lone_logprobs(policy, context)[action].item()
            assert infos[row]["ref_logprob"] == pytest.approx(expected_ref, abs=1e-5)
            assert infos[row]["policy_logprob"] == pytest.approx(expected_policy, abs=1e-5)
        endings |= {(step, int(row)) for row in np.flatnonzero(dones)}
    assert len({step for step, _ in endings}) >= 4  # episodes end at different times
    assert {row for _, row in endings} == {0, 1, 2}

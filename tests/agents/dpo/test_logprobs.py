import math

import pytest
import torch
from rlhf_gym.agents.dpo import (
    DPOCollator,
    add_reference_logprobs,
    dpo_loss,
    encode_dpo_pairs,
    sequence_logprobs,
)
from rlhf_gym.reward_models.data import PreferenceDataError, PreferencePair
from word_lm import tiny_lm, word_tokenizer

WORDS = ["review", "of", "the", "phone", ":", "it", "is", "good", "bad", "very", "."]


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer(WORDS)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tokenizer):
    return tiny_lm(request.param, len(tokenizer))


PAIRS = [
    PreferencePair("review of the phone :", "it is very good .", "it is bad ."),
    PreferencePair("the phone", "good", "very bad . it is bad"),
]


def test_rows_are_prompt_completion_eos(tokenizer):
    rows = encode_dpo_pairs(PAIRS, tokenizer, max_length=32)
    prompt = tokenizer("review of the phone :", add_special_tokens=False)["input_ids"]
    chosen = tokenizer("it is very good .", add_special_tokens=False)["input_ids"]
    assert rows[0]["chosen_ids"] == prompt + chosen + [tokenizer.eos_token_id]
    assert rows[0]["chosen_start"] == len(prompt)


def test_sequence_logprobs_equal_a_manual_per_token_sum(model, tokenizer):
    rows = encode_dpo_pairs(PAIRS, tokenizer, max_length=32)
    batch = DPOCollator(tokenizer.pad_token_id)(rows)
    with torch.no_grad():
        got = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"],
                                batch["completion_mask"])  # fmt: skip
    sides = [(r["chosen_ids"], r["chosen_start"]) for r in rows]
    sides += [(r["rejected_ids"], r["rejected_start"]) for r in rows]
    for value, (ids, start) in zip(got.tolist(), sides, strict=True):
        with torch.no_grad():  # each row alone, unpadded
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
        manual = sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))
        assert abs(value - manual) < 1e-5


def test_reference_equal_to_policy_gives_log_two_and_zero_rewards(model, tokenizer):
    rows = encode_dpo_pairs(PAIRS, tokenizer, max_length=32)
    add_reference_logprobs(model, rows, tokenizer.pad_token_id)
    batch = DPOCollator(tokenizer.pad_token_id)(rows)
    with torch.no_grad():
        lp = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"],
                               batch["completion_mask"])  # fmt: skip
    loss, metrics = dpo_loss(lp[:2], lp[2:], batch["ref_chosen"], batch["ref_rejected"], 0.1)
    assert abs(loss.item() - math.log(2)) < 1e-6
    assert abs(metrics["dpo/rewards_chosen"]) < 1e-6
    assert abs(metrics["dpo/rewards_rejected"]) < 1e-6


def test_over_long_pair_names_the_flag(tokenizer):
    with pytest.raises(PreferenceDataError, match="pair 0: sequence has 11 tokens.*--max-length"):
        encode_dpo_pairs(PAIRS, tokenizer, max_length=8)


def test_left_truncation_keeps_the_completion_whole(tokenizer):
    rows = encode_dpo_pairs(PAIRS[:1], tokenizer, max_length=7, truncation="left")
    chosen = tokenizer("it is very good .", add_special_tokens=False)["input_ids"]
    assert rows[0]["chosen_ids"][rows[0]["chosen_start"] :] == chosen + [tokenizer.eos_token_id]
    assert len(rows[0]["chosen_ids"]) == 7

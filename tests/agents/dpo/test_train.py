from dataclasses import asdict

import torch
from rlhf_gym.agents.dpo import (
    DPOCollator,
    DPOConfig,
    encode_dpo_pairs,
    sequence_logprobs,
    train_dpo,
)
from rlhf_gym.reward_models.data import PreferencePair
from word_lm import tiny_lm, word_tokenizer

WORDS = ["review", "of", "the", "phone", "lamp", "book", ":", "it", "is", "good", "bad"]


def _margin(model, tokenizer, pairs):
    """Mean log π(chosen) − log π(rejected) over ``pairs``."""
    batch = DPOCollator(tokenizer.pad_token_id)(encode_dpo_pairs(pairs, tokenizer, max_length=16))
    with torch.no_grad():
        lp = sequence_logprobs(model.eval(), batch["input_ids"], batch["attention_mask"],
                               batch["completion_mask"])  # fmt: skip
    return (lp[: len(pairs)] - lp[len(pairs) :]).mean().item()


def test_short_run_prefers_good_over_bad(tmp_path, one_thread):
    tokenizer = word_tokenizer(WORDS)
    items = ["phone", "lamp", "book"]
    pairs = [PreferencePair(f"review of the {item} :", "it is good", "it is bad")
             for item in items for _ in range(8)]  # fmt: skip
    model = tiny_lm("gpt2", len(tokenizer))
    before = _margin(model, tokenizer, pairs[:3])
    config = DPOConfig(learning_rate=1e-2, dpo_epochs=4, batch_size=8, eval_fraction=0.25,
                       print_logs=False, max_length=16)  # fmt: skip
    rows = [asdict(pair) for pair in pairs]  # rows as a JSONL file holds them
    trained, metrics = train_dpo(model, rows, tokenizer=tokenizer, config=config,
                                 output_dir=str(tmp_path))  # fmt: skip
    after = _margin(trained, tokenizer, pairs[:3])
    assert after > before + 1.0
    assert metrics["eval_dpo/reward_accuracy"] == 1.0 and metrics["eval_dpo/reward_margin"] > 0
    assert metrics["train_pairs"] == 18 and metrics["eval_pairs"] == 6
    assert next(trained.parameters()).dtype == torch.float32

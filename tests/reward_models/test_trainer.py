import math

import numpy as np
import pytest
import torch
from rlhf_gym.reward_models import RewardTrainingConfig, pairwise_loss, train_reward_model


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """Chosen says 'good' more often than rejected: a rule the tiny model can learn."""
    rng = np.random.default_rng(seed)
    filler = ["the", "a", "cat", "dog", "is", "was", "very"]
    rows = []
    for _ in range(n):
        prompt = " ".join(rng.choice(filler, size=3))
        body = list(rng.choice(filler, size=3))
        rows.append(
            {
                "prompt": prompt,
                "chosen": " ".join([*body, "good"]),
                "rejected": " ".join([*body, "bad"]),
            }
        )
    return rows


def test_pairwise_loss_values():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    plain = pairwise_loss(chosen, rejected)
    assert plain.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log(2)) / 2)
    margin = pairwise_loss(chosen, rejected, torch.tensor([1.0, 0.0]))
    assert margin.item() == pytest.approx(math.log(2))
    centred = pairwise_loss(chosen, rejected, center_coef=0.5)
    assert centred.item() == pytest.approx(plain.item() + 0.5 * 0.5)


def test_training_learns_and_is_deterministic(sft_dir, tmp_path):
    config = RewardTrainingConfig(
        rm_epochs=3, batch_size=16, learning_rate=3e-3, seed=1, logging_steps=5
    )
    rows = synthetic_rows(240)
    rm, metrics, held_out = train_reward_model(
        sft_dir, rows, config=config, eval_fraction=0.25, output_dir=str(tmp_path)
    )
    assert metrics["eval_accuracy"] > 0.9
    assert len(held_out) == 60 and held_out[0].chosen.endswith("good")
    assert (metrics["train_pairs"], metrics["eval_pairs"], metrics["skipped_rows"]) == (180, 60, 0)
    again, _, _ = train_reward_model(
        sft_dir, rows, config=config, eval_fraction=0.25, output_dir=str(tmp_path)
    )
    prompts, completions = ["the cat is"] * 3, ["very good", "very bad", "a dog"]
    first = rm.score(prompts, completions)
    assert first == pytest.approx(again.score(prompts, completions), abs=1e-6)
    assert first[0] > first[1]


def test_training_skips_and_counts_bad_rows(sft_dir, tmp_path):
    rows = [
        *synthetic_rows(40),
        {"prompt": "q", "chosen": "good"},
        {"prompt": "q", "chosen": 1, "rejected": "a"},
    ]
    config = RewardTrainingConfig(rm_epochs=1, batch_size=16)
    _, metrics, _ = train_reward_model(
        sft_dir, rows, config=config, skip_invalid=True, output_dir=str(tmp_path)
    )
    assert metrics["skipped_rows"] == 2 and metrics["train_pairs"] + metrics["eval_pairs"] == 40

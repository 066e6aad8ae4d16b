"""The shared sampler: it matches ``generate`` where both are deterministic, and is seeded."""

from __future__ import annotations

import pytest
import torch
from rlhf_gym.lm.sampling import sample_ids

EOS, PAD = 1, 2
PROMPTS = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [14, 15]]


def _greedy_reference(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    """One row at a time through ``generate``: no padding, no row dropping."""
    out = model.generate(
        torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=EOS, pad_token_id=PAD,
    )[0, len(prompt) :].tolist()
    return out[: out.index(EOS) + 1] if EOS in out else out


def test_near_zero_temperature_is_greedy_generate_per_row(tiny_lm):
    # Make EOS likely so rows stop at different steps and leave the batch.
    with torch.no_grad():
        tiny_lm.get_output_embeddings().weight[EOS] *= 3.0
    got = sample_ids(tiny_lm, PROMPTS, eos_id=EOS, pad_id=PAD, max_new_tokens=12,
                     generator=torch.Generator().manual_seed(0), temperature=1e-6)
    want = [_greedy_reference(tiny_lm, p, 12) for p in PROMPTS]
    assert got == want
    assert len({len(g) for g in got}) > 1, "rows should stop at different lengths"


def test_same_seed_same_samples_and_global_rng_untouched(tiny_lm):
    def draw(seed: int) -> list[list[int]]:
        return sample_ids(tiny_lm, PROMPTS * 4, eos_id=EOS, pad_id=PAD, max_new_tokens=10,
                          generator=torch.Generator().manual_seed(seed))

    state = torch.random.get_rng_state()
    first = draw(3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert first == draw(3)
    assert first != draw(4)
    assert all(1 <= len(row) <= 10 for row in first)
    assert all(EOS not in row[:-1] for row in first)


def test_empty_prompt_is_an_error(tiny_lm):
    with pytest.raises(ValueError, match="at least one token"):
        sample_ids(tiny_lm, [[5], []], eos_id=EOS, pad_id=PAD, max_new_tokens=4,
                   generator=torch.Generator())

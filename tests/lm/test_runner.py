import random

import pytest
import torch
from rlhf_gym.lm.runner import CachedCausalLM


def _full_forward(model, ids, temperature):
    out = model(torch.tensor([ids]), output_hidden_states=True)
    return out.logits[0, -1] / temperature, out.hidden_states[-1][0, -1]


@torch.no_grad()
def test_staggered_rows_match_full_forward(tiny_lm):
    """Resets, idle rows and compaction must not change any row's logits or hidden state."""
    rng = random.Random(0)
    num_rows, vocab, temperature = 4, tiny_lm.config.vocab_size, 0.7
    runner = CachedCausalLM(tiny_lm, num_rows, temperature=temperature, output_hidden=True)
    histories: list[list[int]] = [[] for _ in range(num_rows)]
    worst = 0.0
    for _ in range(60):
        tokens, reset = [], []
        for row in range(num_rows):
            if not histories[row] or rng.random() < 0.08:
                prompt = [rng.randrange(vocab) for _ in range(rng.randint(1, 6))]
                tokens.append(prompt)
                reset.append(True)
                histories[row] = list(prompt)
            elif rng.random() < 0.1:
                tokens.append([])
                reset.append(False)
            else:
                token = rng.randrange(vocab)
                tokens.append([token])
                reset.append(False)
                histories[row].append(token)
        step = runner.advance(tokens, reset)
        for row in range(num_rows):
            logits, hidden = _full_forward(tiny_lm, histories[row], temperature)
            worst = max(worst, (logits - step.logits[row]).abs().max().item())
            worst = max(worst, (hidden - step.hidden[row]).abs().max().item())
    assert worst < 1e-4
    assert runner.num_forwards == 60
    assert runner.histories() == histories


@torch.no_grad()
def test_cache_stays_bounded_by_compaction(tiny_lm):
    runner = CachedCausalLM(tiny_lm, 2, compact_factor=2.0)
    for step in range(200):
        # Row 0 restarts every 5 steps with a 4-token prompt, piling up masked columns.
        if step % 5 == 0:
            runner.advance([[3, 4, 5, 6], [7]], [True, step == 0])
        else:
            runner.advance([[8], [9]])
        if step % 50 == 49:
            runner.advance([[3], [3]], [True, True])
    assert runner._mask is not None
    assert runner._mask.shape[1] <= 2 * max(len(h) for h in runner.histories()) + 8


def test_reset_row_needs_tokens(tiny_lm):
    runner = CachedCausalLM(tiny_lm, 2)
    with pytest.raises(ValueError, match="reset row needs"):
        runner.advance([[3], []], [False, True])

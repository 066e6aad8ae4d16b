"""Per-row LoRA adapters in the cached runner: PEFT's mixed batches, rows named by cache row."""

import random

import pytest
import torch
from rlhf_gym.agents.common.lora import apply_lora
from rlhf_gym.lm.runner import CachedCausalLM
from word_lm import tiny_causal_lm

VOCAB = 50
NAMES = ["default", "__base__", "__base__", "default", "default", "__base__"]
OTHER = {"default": "__base__", "__base__": "default"}


def lora_model(arch: str):
    """A tiny peft model whose adapters are not zero (so a row's adapter shows in its logits)."""
    torch.manual_seed(1)
    peft = apply_lora(tiny_causal_lm(arch, VOCAB), {"r": 4, "lora_alpha": 8})
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 0.5)
    return peft.eval()


def lone_logits(peft, history: list[int], name: str, temperature: float) -> torch.Tensor:
    """The last logits of one uncached forward of ``history``, adapter on or off."""
    ids = torch.tensor([history])
    if name == "__base__":
        with peft.disable_adapter():
            return peft(input_ids=ids).logits[0, -1].float() / temperature
    return peft(input_ids=ids).logits[0, -1].float() / temperature


def tokens_at(rng: random.Random, step: int, retired: set[int]) -> tuple[list, list[bool]]:
    """Per row: nothing when retired, else a reset with a new prefix now and then, else a token."""
    tokens, resets = [], []
    for row in range(len(NAMES)):
        reset = row in retired and step % 4 == 0 or (step + row) % 7 == 0
        if row in retired and not reset:
            tokens.append([])
        else:
            count = rng.randint(1, 3) if reset else 1
            tokens.append([rng.randrange(3, VOCAB) for _ in range(count)])
        resets.append(reset)
    return tokens, resets


@pytest.mark.parametrize(("arch", "drop_share"), [("gpt2", 0.0), ("llama", 0.25)])
@torch.no_grad()
def test_each_row_runs_its_own_adapter_through_resets_and_retiring(arch, drop_share) -> None:
    peft, rng, temperature = lora_model(arch), random.Random(0), 0.8
    runner = CachedCausalLM(
        peft, len(NAMES), temperature=temperature, drop_share=drop_share, compact_factor=1.5,
        adapter_names=NAMES,
    )  # fmt: skip
    out = runner.advance([[rng.randrange(3, VOCAB)] for _ in NAMES], [True] * len(NAMES))
    retired: set[int] = set()
    batch_rows, differ = [], 0.0
    for step in range(1, 24):
        if step in (3, 9):
            runner.retire([1, 3] if step == 3 else [4])
            retired |= {1, 3} if step == 3 else {4}
        tokens, resets = tokens_at(rng, step, retired)
        retired -= {row for row, reset in enumerate(resets) if reset}
        out = runner.advance(tokens, resets)
        batch_rows.append(runner.last_batch_rows)
        for row, history in enumerate(runner.histories()):
            if row in retired:
                continue
            want = lone_logits(peft, history, NAMES[row], temperature)
            torch.testing.assert_close(out.logits[row], want, rtol=0, atol=1e-5)
            other = lone_logits(peft, history, OTHER[NAMES[row]], temperature)
            differ = max(differ, (other - want).abs().max().item())
    assert differ > 1e-2  # the adapters change the logits: a wrong name would show
    assert min(batch_rows) < len(NAMES)  # retired rows left the batch; the names followed


def test_adapter_names_go_to_each_forward_only_when_given() -> None:
    peft, seen = lora_model("gpt2"), []
    peft.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs.get("adapter_names")), with_kwargs=True
    )
    with torch.no_grad():
        named = CachedCausalLM(peft, 3, adapter_names=["default", "__base__", "default"])
        named.advance([[3], [4, 5], [6]], [True] * 3)
        named.retire([1])
        named.advance_one([7, 8, 9])
        CachedCausalLM(peft, 3).advance([[3], [4], [5]], [True] * 3)
    assert seen == [["default", "__base__", "default"], ["default", "default"], None]


def test_one_adapter_name_per_row() -> None:
    with pytest.raises(ValueError, match="an adapter name for each of 3 rows"):
        CachedCausalLM(lora_model("gpt2"), 3, adapter_names=["default", "__base__"])

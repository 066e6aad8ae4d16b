"""Precision: trained weights and Adam's state are float32 whatever the checkpoint's dtype.

Transformers 5 loads a checkpoint in the dtype it was saved in, so a bf16 checkpoint arrives in
bf16. The policy upcasts what it trains; frozen models (the reference, a LoRA base) keep the
half precision they are asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rlhf_gym.agents.common.lora import ReferenceView, apply_lora
from rlhf_gym.agents.ppo import LMPPO
from rlhf_gym.lm.loading import load_causal_lm


@pytest.fixture
def bf16_llama(tmp_path: Path, lm_factory) -> Path:
    """A tiny Llama saved in bfloat16 (its safetensors hold bf16 tensors)."""
    path = tmp_path / "llama-bf16"
    lm_factory("llama").to(torch.bfloat16).save_pretrained(path)
    return path


def adam_dtypes(agent: LMPPO) -> set[torch.dtype]:
    """The dtypes of every tensor in the optimizer's state (moments), after an update."""
    state = agent.policy.optimizer.state.values()
    return {v.dtype for s in state for k, v in s.items() if k != "step"}


def one_update(agent: LMPPO) -> None:
    agent.learn(agent.n_steps * agent.n_envs)
    assert agent.policy.optimizer.state, "no optimizer step was taken"


def test_the_checkpoint_is_bf16_as_saved(bf16_llama: Path) -> None:
    assert load_causal_lm(bf16_llama).dtype == torch.bfloat16  # transformers 5: stored dtype
    assert load_causal_lm(bf16_llama, dtype="float32").dtype == torch.float32


def test_full_fine_tuning_of_a_bf16_checkpoint_trains_in_float32(bf16_llama, env_factory):
    reference = load_causal_lm(bf16_llama, dtype="bfloat16")  # frozen: half precision
    agent = LMPPO(
        "LMPolicy", env_factory(None, reference=reference), n_steps=6, batch_size=4,
        seed=0, device="cpu", policy_kwargs={"model": str(bf16_llama), "dtype": "bfloat16"},
    )  # fmt: skip
    before = {n: p.detach().clone() for n, p in agent.policy.model.named_parameters()}
    one_update(agent)
    trained = [p for p in agent.policy.parameters() if p.requires_grad]
    assert trained and {p.dtype for p in trained} == {torch.float32}
    assert adam_dtypes(agent) == {torch.float32}
    changed = [n for n, p in agent.policy.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed  # the float32 weights moved
    assert next(agent.env.get_attr("reference_model")[0].parameters()).dtype == torch.bfloat16


def test_lora_keeps_a_half_base_and_float32_adapters(bf16_llama, env_factory):
    lora = apply_lora(load_causal_lm(bf16_llama, dtype="bfloat16"), {"r": 2, "lora_alpha": 4})
    agent = LMPPO(
        "LMPolicy", env_factory(None, reference=ReferenceView(lora)), n_steps=6, batch_size=4,
        seed=0, device="cpu", learning_rate=1e-2,
        policy_kwargs={"model": str(bf16_llama), "lora": lora, "dtype": "bfloat16"},
    )  # fmt: skip
    one_update(agent)
    params = dict(agent.policy.model.named_parameters())
    adapters = {n: p for n, p in params.items() if p.requires_grad}
    assert adapters and all("lora_" in n for n in adapters)
    assert {p.dtype for p in adapters.values()} == {torch.float32}
    assert {p.dtype for n, p in params.items() if n not in adapters} == {torch.bfloat16}
    assert adam_dtypes(agent) == {torch.float32}
    assert agent.policy.model is lora  # one copy: the env's reference is a view of it

"""The fused LoRA rollout: the policy's act and the env's reference as one forward over 2N rows.

``on_policy.py`` calls :func:`fuse_reference_forward` at setup; here the ``fused`` fixture
patches ``_setup_model`` to do the same, so the tests run the agent as it will run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ppo_helpers import ForwardCounter
from rlhf_gym.agents.common import LMOnPolicyAlgorithm
from rlhf_gym.agents.common.fused_reference import (
    fuse_reference_forward,
    rollout_state,
    shares_reference,
)
from rlhf_gym.agents.common.lora import ReferenceView, apply_lora
from rlhf_gym.agents.ppo import LMPPO
from stable_baselines3.common.callbacks import BaseCallback

SHAPE = {"num_envs": 8, "max_new_tokens": 12}  # 12 tokens: some rows end early, some run out


@pytest.fixture
def fused(monkeypatch) -> None:
    """``_setup_model`` turns the fused forward on, as the lines in ``on_policy.py`` will."""
    setup = LMOnPolicyAlgorithm._setup_model

    def setup_and_fuse(self) -> None:
        setup(self)
        if self.env is not None:
            fuse_reference_forward(self.policy, self.env)

    monkeypatch.setattr(LMOnPolicyAlgorithm, "_setup_model", setup_and_fuse)


def lora_lm(lm_factory, arch: str = "gpt2"):
    """A tiny peft LM whose adapters are not zero, so the policy is not its reference."""
    lm = lm_factory(arch)
    torch.manual_seed(1)
    peft = apply_lora(lm, {"r": 4, "lora_alpha": 8})
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 0.5)
    return lm, peft


def lora_agent(
    lm_factory, env_factory, arch: str = "gpt2", env_kwargs=None, base_dir=None, **ppo
) -> LMPPO:
    """A LoRA PPO agent whose env's reference is a view of the policy's own peft model.

    With ``base_dir`` the base is saved there and named by path (a checkpoint needs it).
    """
    lm, peft = lora_lm(lm_factory, arch)
    if base_dir is not None:
        peft.get_base_model().save_pretrained(base_dir)
    env = env_factory(None, reference=ReferenceView(peft), **SHAPE, **(env_kwargs or {}))
    options = {"batch_size": 4, "seed": 0, "device": "cpu", **ppo}
    model = lm if base_dir is None else str(base_dir)
    return LMPPO("LMPolicy", env, policy_kwargs={"model": model, "lora": peft}, **options)


class InfoRecorder(BaseCallback):
    """Keeps every step's infos, as SB3 callbacks see them."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[list[dict]] = []

    def _on_step(self) -> bool:
        self.infos.append(self.locals["infos"])
        return True


def collect(agent: LMPPO) -> InfoRecorder:
    """One rollout, as learn() does it, with its infos recorded."""
    recorder = InfoRecorder()
    _, callback = agent._setup_learn(agent.n_steps * agent.n_envs, recorder)
    assert agent.collect_rollouts(agent.env, callback, agent.rollout_buffer, agent.n_steps)
    return recorder


def record_acts(agent: LMPPO, monkeypatch) -> list[dict]:
    """Patch the policy's act to keep each step's inputs and outputs."""
    records: list[dict] = []
    act = agent.policy.act

    def recording(state, obs, starts):
        out = act(state, obs, starts)
        live = ~state.retired  # after the feed: the rows this step computed
        rows, histories = state.actor.last_batch_rows, state.actor.histories()
        records.append({"obs": obs, "out": out, "live": live, "rows": rows, "seen": histories})
        return out

    monkeypatch.setattr(agent.policy, "act", recording)
    return records


def last_logprobs(model, obs, actions, temperature: float) -> torch.Tensor:
    """``log π(a|s)`` from one uncached forward of the whole observations (adapters as set)."""
    ids, mask = obs["input_ids"].long(), obs["attention_mask"].long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float() / temperature
    last = logits[torch.arange(len(ids)), mask.sum(dim=1) - 1]
    return torch.log_softmax(last, dim=-1).gather(1, actions[:, None]).squeeze(1)


def test_fused_act_equals_separate_forwards_with_staggered_ends(
    fused, lm_factory, env_factory, monkeypatch
) -> None:
    agent = lora_agent(lm_factory, env_factory, "llama", env_kwargs={"temperature": 0.7})
    assert agent.env.reference_handed_over
    records = record_acts(agent, monkeypatch)
    collect(agent)
    model, n = agent.policy.model, agent.n_envs
    for record in records:
        actions, _, log_probs, _, ref_log_probs = record["out"]
        live = torch.from_numpy(record["live"])
        want = last_logprobs(model, record["obs"], actions, 0.7)
        with model.disable_adapter():
            want_ref = last_logprobs(model, record["obs"], actions, 0.7)
        torch.testing.assert_close(log_probs[live], want[live], rtol=0, atol=1e-5)
        torch.testing.assert_close(ref_log_probs[live], want_ref[live], rtol=0, atol=1e-5)
        assert (want_ref[live] - want[live]).abs().max() > 1e-3  # the adapters matter
    lives = [int(r["live"].sum()) for r in records]
    assert lives[0] == n and 0 < min(lives) < n  # staggered: rows ended and were retired
    rows = [r["rows"] for r in records]
    assert rows[0] == 2 * n and min(rows) < 2 * n  # retired pairs left the 2N-row cache
    for record in records:  # each pair of rows in lockstep, and retired together
        assert record["seen"][:n] == record["seen"][n:]
        assert [bool(h) for h in record["seen"][:n]] == record["live"].tolist()


# fixed rollouts of 5 steps cut 12-token episodes (bootstrapped); episode-aligned ones hold them
ROLLOUTS = {"fixed": {"n_steps": 5, "episode_aligned": False}, "episodes": {}}


@pytest.mark.parametrize("mode", sorted(ROLLOUTS))
def test_fused_rollout_fills_the_buffer_the_unfused_one_does(
    fused, lm_factory, env_factory, mode: str
) -> None:
    runs = {}
    for name in ("unfused", "fused"):
        agent = lora_agent(lm_factory, env_factory, **ROLLOUTS[mode])
        if name == "unfused":
            agent.env.hand_over_reference(False)  # the env prices its reference itself
        assert agent.env.reference_handed_over == (name == "fused")
        infos = collect(agent).infos
        runs[name] = (agent.rollout_buffer, infos)
    (plain, plain_infos), (fused_buffer, fused_infos) = runs["unfused"], runs["fused"]
    np.testing.assert_array_equal(fused_buffer.actions, plain.actions)
    for field in ("log_probs", "rewards", "values", "advantages"):
        got, want = getattr(fused_buffer, field), getattr(plain, field)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=field)
    assert len(fused_infos) == len(plain_infos)
    for got_step, want_step in zip(fused_infos, plain_infos, strict=True):
        for got, want in zip(got_step, want_step, strict=True):
            assert got.keys() == want.keys()
            for key in ("ref_logprob", "kl", "policy_logprob", "score"):
                assert got[key] == pytest.approx(want[key], abs=1e-5), key
    kl = np.array([info["kl"] for step in fused_infos for info in step])
    assert np.abs(kl).max() > 1e-3  # the policy is not its reference


def test_one_forward_of_the_peft_model_per_token_and_no_reference_forward(
    fused, lm_factory, env_factory
) -> None:
    agent = lora_agent(lm_factory, env_factory)
    reference = agent.env.reference_model
    peft, view = ForwardCounter(agent.policy.model), ForwardCounter(reference)
    batches: list[int] = []
    agent.policy.model.register_forward_hook(
        lambda module, args, kwargs, out: batches.append(len(kwargs["adapter_names"])),
        with_kwargs=True,
    )
    recorder = collect(agent)
    steps, n = len(recorder.infos), agent.n_envs
    assert view.calls == 0 and "ref" not in agent.env.batch._runners
    assert peft.calls == steps  # one forward per token, the reference included
    assert batches[0] == 2 * n and max(batches) == 2 * n and min(batches) < 2 * n
    assert peft.rows == sum(batches)  # every row named: an adapter or the base


def test_the_unfused_rollout_runs_two_forwards_per_token(lm_factory, env_factory) -> None:
    agent = lora_agent(lm_factory, env_factory)
    agent.env.hand_over_reference(False)  # a no-op until on_policy.py's setup fuses
    peft, view = ForwardCounter(agent.policy.model), ForwardCounter(agent.env.reference_model)
    steps = len(collect(agent).infos)
    # the env's reference (its reset, its rebuild, then a step's worth) runs the peft model too
    assert view.calls >= steps and peft.calls == steps + view.calls


def test_a_step_without_the_reference_handover_raises(fused, lm_factory, env_factory) -> None:
    agent = lora_agent(lm_factory, env_factory)
    env = agent.env
    env.reset()
    env.set_policy_logprobs(np.full(env.num_envs, -1.0))
    with pytest.raises(RuntimeError, match=r"set_reference_logprobs\(\.\.\.\) right before"):
        env.step(np.full(env.num_envs, 3))
    env.hand_over_reference(False)
    env.set_reference_logprobs(np.full(env.num_envs, -1.0))
    env.set_policy_logprobs(np.full(env.num_envs, -1.0))
    with pytest.raises(RuntimeError, match=r"runs its own reference.*hand_over_reference\(True\)"):
        env.step(np.full(env.num_envs, 3))
    with pytest.raises(ValueError, match=r"set_reference_logprobs expects shape \(8,\)"):
        env.set_reference_logprobs(np.zeros(3))


def test_handover_survives_the_episode_checkpoint(fused, lm_factory, env_factory) -> None:
    agent = lora_agent(lm_factory, env_factory)
    env, n = agent.env, agent.n_envs
    env.reset()
    step = (np.arange(n) % 20 + 5).astype(np.int64)  # no stop id: every row goes on
    handed = np.linspace(-3.0, -1.0, n)

    def run(times: int) -> list[np.ndarray]:
        rewards = []
        for _ in range(times):
            env.set_policy_logprobs(np.full(n, -2.0))
            env.set_reference_logprobs(handed)
            rewards.append(env.step(step)[1])
        return rewards

    run(2)
    saved = env.get_state()
    first = run(3)
    env.set_state(saved)
    assert "ref" not in env.batch._runners  # the rebuild kept the handover
    np.testing.assert_array_equal(run(3), first)
    env.set_state(saved)
    env.hand_over_reference(False)  # the env's own reference comes back for the live rows
    assert "ref" in env.batch._runners
    env.set_policy_logprobs(np.full(n, -2.0))
    assert np.isfinite(env.step(step)[1]).all()


def test_a_reference_that_is_not_the_policys_own_is_not_fused(
    fused, lm_factory, env_factory, tmp_path
) -> None:
    lm = lm_factory("gpt2")
    copy_agent = LMPPO(
        "LMPolicy", env_factory(lm, **SHAPE), seed=0, device="cpu",
        policy_kwargs={"model": lm, "lora": {"r": 4, "lora_alpha": 8}},
    )  # fmt: skip
    assert copy_agent.policy.has_lora and not copy_agent.env.reference_handed_over

    agent = lora_agent(lm_factory, env_factory, base_dir=tmp_path / "base")
    env = agent.env
    assert env.reference_handed_over
    agent.save(tmp_path / "ckpt")
    loaded = LMPPO.load(tmp_path / "ckpt", env=env, device="cpu")  # a new peft model
    assert not shares_reference(loaded.policy, env)
    assert not env.reference_handed_over  # setup handed it back: the env prices it again
    collect(loaded)
    env.hand_over_reference(True)
    with pytest.raises(ValueError, match="not a ReferenceView of this policy's LoRA model"):
        rollout_state(loaded.policy, env)

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from rlhf_gym.agents.common import NonFiniteLossError
from rlhf_gym.agents.ppo import LMPPO
from stable_baselines3.common.callbacks import BaseCallback


def params(agent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.policy.parameters()]


# fixed rollouts of 4 steps cut 6-token episodes; episode-aligned ones hold whole episodes
ROLLOUTS = {"fixed": {"n_steps": 4, "episode_aligned": False}, "episodes": {}}


@pytest.mark.parametrize("mode", sorted(ROLLOUTS))
def test_resume_equals_uninterrupted_run(agent_factory, tmp_path, mode: str) -> None:
    straight = agent_factory(**ROLLOUTS[mode])
    chunk = straight.n_steps * straight.n_envs * 2
    straight.learn(chunk)
    straight.learn(chunk, reset_num_timesteps=False)

    first = agent_factory(**ROLLOUTS[mode])
    first.learn(chunk)
    first.save(tmp_path / "ckpt")
    env = first.env  # the live env continues, as in the uninterrupted run
    del first
    resumed = LMPPO.load(tmp_path / "ckpt", env=env, device="cpu", force_reset=False)
    resumed.learn(chunk, reset_num_timesteps=False)

    assert resumed.num_timesteps == straight.num_timesteps
    for a, b in zip(params(straight), params(resumed), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # bitwise on CPU
    assert resumed.kl_ctl.value == straight.kl_ctl.value


def test_resume_in_a_new_env_equals_uninterrupted_run(
    agent_factory, env_factory, lm_factory, tmp_path
) -> None:
    # rollouts of 5 cut 12-token episodes: the env's caches at the cut matter (without the
    # per-rollout rebuild, this setting differs by ~1e-7)
    shape = {"num_envs": 8, "max_new_tokens": 12}
    straight = agent_factory(n_steps=5, episode_aligned=False, **shape)
    chunk = straight.n_steps * straight.n_envs * 2
    straight.learn(2 * chunk)

    first = agent_factory(n_steps=5, episode_aligned=False, **shape)
    first.learn(chunk)
    first.save(tmp_path / "ckpt")
    del first
    env = env_factory(lm_factory("gpt2"), **shape)  # a fresh env: episodes from the checkpoint
    resumed = LMPPO.load(tmp_path / "ckpt", env=env, device="cpu", force_reset=False)
    resumed.learn(chunk, reset_num_timesteps=False)

    for a, b in zip(params(straight), params(resumed), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.kl_ctl.value == straight.kl_ctl.value
    np.testing.assert_array_equal(env.batch.ids, straight.env.batch.ids)


def test_checkpoint_layout_is_json_and_safetensors(agent_factory, tmp_path) -> None:
    agent = agent_factory()
    agent.learn(agent.n_steps * agent.n_envs)  # the optimizer has moments to save
    agent.save(tmp_path / "ckpt")
    ckpt = tmp_path / "ckpt"
    assert sorted(os.listdir(ckpt)) == [
        "checkpoint.json", "optimizer.safetensors", "policy", "state.json", "state.safetensors",
    ]  # fmt: skip
    files = sorted(os.listdir(ckpt / "policy"))
    assert "model.safetensors" in files and "value_head.safetensors" in files
    assert "config.json" in files
    suffixes = {p.suffix for p in ckpt.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".safetensors"}, suffixes
    size = os.path.getsize(ckpt / "optimizer.safetensors")
    weights = os.path.getsize(ckpt / "policy" / "model.safetensors")
    assert size < 3 * weights  # the optimizer's two moments only, no model or reference copy
    loaded = LMPPO.load(ckpt, device="cpu")  # no env: prediction only
    obs = agent.env.reset()
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0]
    )
    assert loaded.learning_rate == agent.learning_rate and loaded.clip_range(1) == 0.2


def test_failed_save_keeps_the_good_checkpoint(agent_factory, tmp_path, monkeypatch) -> None:
    agent = agent_factory()
    agent.save(tmp_path / "ckpt")
    before = (tmp_path / "ckpt" / "checkpoint.json").read_bytes()
    agent.learn(agent.n_steps * agent.n_envs)

    def broken(path) -> None:
        os.makedirs(path)
        raise OSError("disk full")

    monkeypatch.setattr(agent.policy, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        agent.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "checkpoint.json").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]  # no temp folder left behind
    LMPPO.load(tmp_path / "ckpt", device="cpu")


class PoisonValueHead(BaseCallback):
    """Makes the value head NaN at the end of a rollout, so the update's loss is NaN."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        with torch.no_grad():
            self.model.policy.value_head.weight.fill_(float("nan"))


def test_non_finite_loss_stops_with_clear_error(agent_factory, tmp_path) -> None:
    agent = agent_factory()
    agent.save(tmp_path / "ckpt")
    weights = [p.detach().clone() for p in agent.policy.model.parameters()]
    with pytest.raises(NonFiniteLossError, match="loss is nan.*checkpoint is untouched"):
        agent.learn(agent.n_steps * agent.n_envs, callback=PoisonValueHead())
    for a, b in zip(weights, agent.policy.model.parameters(), strict=True):
        assert torch.equal(a, b)  # no step was applied
    assert LMPPO.load(tmp_path / "ckpt", device="cpu").policy.value_head.weight.isfinite().all()

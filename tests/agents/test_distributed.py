"""Data-parallel LMPPO on 2 CPU ranks (gloo), launched by ``torchrun`` as a real job is.

One launch of ``ddp_worker.py`` (module fixture) runs every scenario on both ranks; the tests
read what each rank wrote and compare it with the other rank and with one process on the union.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
RANKS = (0, 1)


def worker_module() -> Any:
    spec = importlib.util.spec_from_file_location("ddp_worker", HERE / "ddp_worker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    """The folder both ranks wrote to."""
    out = tmp_path_factory.mktemp("ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(HERE / "ddp_worker.py"), str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return out


def records(job: Path) -> list[dict[str, Any]]:
    return [json.loads((job / f"rank{r}.json").read_text()) for r in RANKS]


def tensors(job: Path, name: str) -> list[dict[str, torch.Tensor]]:
    return [load_file(str(job / f"rank{r}_{name}.safetensors")) for r in RANKS]


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


def test_not_distributed_helpers_are_identities() -> None:
    from rlhf_gym import distributed

    assert not distributed.init_from_env()  # no launcher variables here
    assert (distributed.world_size(), distributed.rank(), distributed.is_main_process()) == (
        1, 0, True,
    )  # fmt: skip
    assert distributed.rank_seed(7) == 7 and distributed.rank_seed(None) is None
    tensor = torch.arange(3.0)
    assert distributed.all_reduce_mean(tensor) is tensor
    values = np.random.default_rng(0).normal(size=50).astype(np.float32)
    assert distributed.global_mean_std(values) == (values.mean(), values.std())
    with distributed.main_process_first():
        pass


def test_import_rlhf_gym_leaves_distributed_unimported() -> None:
    code = "import sys, rlhf_gym; assert 'rlhf_gym.distributed' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parameters_identical_on_both_ranks_after_every_update(job: Path) -> None:
    for name in ("it0", "it1", "it2", "it3"):
        rank0, rank1 = tensors(job, name)
        assert any(k.startswith("critic_trunk.") for k in rank0), "the critic is compared too"
        assert_same(rank0, rank1)
    start, trained = tensors(job, "it0")[0], tensors(job, "it2")[0]
    assert not torch.equal(start["value_head.weight"], trained["value_head.weight"])
    assert not torch.equal(
        start["critic_trunk.trunk.h.0.mlp.c_fc.weight"],
        trained["critic_trunk.trunk.h.0.mlp.c_fc.weight"],
    )
    rollouts = [[it["actions"] for it in rec["iterations"]] for rec in records(job)]
    assert rollouts[0] != rollouts[1], "each rank samples its own shard (rank_seed)"


def test_split_update_equals_one_process_on_the_union(job: Path) -> None:
    worker = worker_module()
    torch.set_num_threads(1)
    agent = worker.build_agent(num_envs=4, batch_size=4, n_epochs=2, whiten_rewards=True)
    data = worker.synthetic_rollout(agent.observation_space["input_ids"].shape[-1])
    _, union_order = worker.split_orders([4, 5], batch_size=2)
    worker.fixed_update(agent, data, slice(0, 4), union_order)
    single = worker.weights(agent)
    for r, result in zip(RANKS, tensors(job, "split"), strict=True):
        assert_same(single, {k: v for k, v in result.items() if "/" not in k}, atol=1e-6)
        for name in ("advantages", "returns", "rewards"):  # whitened with the union's stats
            union = torch.as_tensor(getattr(agent.rollout_buffer, name))[:, 2 * r : 2 * r + 2]
            torch.testing.assert_close(result[f"buffer/{name}"], union, rtol=0, atol=1e-6)
    for rec in records(job):
        for key in ("policy/approxkl", "loss/policy", "loss/value", "val/mean"):
            assert rec["split_metrics"][key] == pytest.approx(agent.last_metrics[key], abs=1e-6)


def test_kl_coef_and_whitening_use_the_global_statistics(job: Path) -> None:
    from rlhf_gym.agents.common.kl_controller import AdaptiveKLController

    rank0, rank1 = records(job)
    for it0, it1 in zip(rank0["iterations"], rank1["iterations"], strict=True):
        kls = it0["episode_kls"] + it1["episode_kls"]
        assert len(it0["episode_kls"]) != len(kls)
        assert it0["stats"]["num_episodes"] == it1["stats"]["num_episodes"] == len(kls)
        assert it0["stats"]["kl"] == pytest.approx(np.mean(kls), rel=1e-12)
        expected = AdaptiveKLController(it0["beta_before"], 1.0, 20).update(np.mean(kls), len(kls))
        assert it0["beta"] == it1["beta"] == pytest.approx(expected, rel=1e-12)
        assert it0["beta"] != it0["beta_before"]
        assert it0["approxkl"] == it1["approxkl"]  # the early-stopping statistic
        advantages = np.array(it0["advantages"] + it1["advantages"])
        assert advantages.mean() == pytest.approx(0.0, abs=1e-5)
        assert advantages.std() == pytest.approx(1.0, abs=1e-5)
        assert abs(np.mean(it0["advantages"])) > 1e-3, "a rank alone is not whitened"


def test_only_rank_0_writes_logs_and_checkpoints(job: Path) -> None:
    assert list((job / "tb_rank0").rglob("events.out.tfevents.*"))
    assert not (job / "tb_rank1").exists()
    assert [rec["logger_outputs"] for rec in records(job)] == [1, 0]
    assert [rec["writer_calls"] for rec in records(job)] == [3, 0]  # iterations 0, 1, 2 on rank 0
    assert (job / "ckpt_rank0" / "checkpoint.json").is_file()
    assert not (job / "ckpt_rank1").exists()


def test_resume_restores_both_ranks(job: Path) -> None:
    saved, loaded = tensors(job, "it2"), tensors(job, "loaded")
    for r in RANKS:
        assert_same(loaded[r], saved[0])
    rank0, rank1 = records(job)
    assert rank0["loaded_generators"] == rank0["saved_generators"]
    assert rank1["loaded_generators"] == rank1["saved_generators"]
    assert rank0["saved_generators"] != rank1["saved_generators"]
    straight, resumed = tensors(job, "it3"), tensors(job, "resumed_it3")
    for r in RANKS:  # each rank continued its own episodes: bitwise the uninterrupted run
        assert_same(resumed[r], straight[r])


def test_ranks_with_different_settings_refuse_to_start(job: Path) -> None:
    for rec in records(job):
        assert "same n_envs (2..3)" in rec["mismatch_error"]


def test_load_with_another_number_of_ranks(job: Path) -> None:
    from rlhf_gym.agents.common.checkpoint_files import CheckpointError
    from rlhf_gym.agents.ppo import LMPPO

    worker = worker_module()
    env = worker.FIXTURES.make_env(worker.FIXTURES.tiny_lm("gpt2"), num_envs=2, max_new_tokens=6)
    with pytest.raises(CheckpointError, match="saved by 2 process.*--nproc_per_node 2"):
        LMPPO.load(job / "ckpt_rank0", env=env, device="cpu", force_reset=False)
    agent = LMPPO.load(job / "ckpt_rank0", env=env, device="cpu")  # new episodes: fine
    assert_same(worker.weights(agent), tensors(job, "it2")[0])


def test_a_non_finite_loss_on_one_rank_stops_every_rank(job: Path) -> None:
    for rec in records(job):
        assert "loss is not finite on 1 rank(s)" in rec["non_finite_error"]

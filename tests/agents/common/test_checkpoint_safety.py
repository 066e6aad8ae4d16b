"""Checkpoints hold no pickle, survive interrupted saves, and fail with errors that name files."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from rlhf_gym.agents.common.checkpoint_files import CheckpointError, sha256_of
from rlhf_gym.agents.ppo import LMPPO


class Touch:
    """Unpickling it creates ``marker``: the file tells whether anything was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def payload(marker: Path) -> bytes:
    return pickle.dumps(Touch(marker))


def rehash(ckpt: Path, name: str) -> None:
    """Make the manifest agree with ``name``'s new bytes (a tampered, consistent checkpoint)."""
    manifest = json.loads((ckpt / "checkpoint.json").read_text())
    manifest["files"][name] = {
        "bytes": (ckpt / name).stat().st_size,
        "sha256": sha256_of(ckpt / name),
    }
    (ckpt / "checkpoint.json").write_text(json.dumps(manifest))


@pytest.fixture
def saved(agent_factory, tmp_path) -> tuple[LMPPO, Path]:
    agent = agent_factory()
    agent.learn(agent.n_steps * agent.n_envs)
    agent.save(tmp_path / "ckpt")
    return agent, tmp_path / "ckpt"


def forbid(*_, **__):
    raise AssertionError("load unpickled something")


def test_a_normal_load_calls_no_unpickler(saved, monkeypatch) -> None:
    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                         (torch, "load")]:  # fmt: skip
        monkeypatch.setattr(module, name, forbid)
    LMPPO.load(saved[1], env=saved[0].env, device="cpu", force_reset=False)


@pytest.mark.parametrize("where", ["state.json", "state.json, stale manifest", "bin", "agent.zip"])
def test_load_refuses_a_pickle_payload(saved, tmp_path, where) -> None:
    ckpt = saved[1]
    proof = tmp_path / "proof"
    pickle.loads(payload(proof))
    assert proof.exists()  # the payload does run when unpickled
    marker = tmp_path / "marker"
    if where.startswith("state.json"):
        (ckpt / "state.json").write_bytes(payload(marker))
        if where == "state.json":
            rehash(ckpt, "state.json")  # the manifest vouches for it: the loader must still refuse
        match = "not a JSON state" if where == "state.json" else "state.json is truncated"
    elif where == "bin":
        (ckpt / "policy" / "pytorch_model.bin").write_bytes(payload(marker))
        match = "pytorch_model.bin is not part of a checkpoint"
    else:
        shutil.rmtree(ckpt)
        ckpt.mkdir()
        (ckpt / "agent.zip").write_bytes(payload(marker))  # the old, pickle-based format
        match = "never unpickles"
    with pytest.raises(CheckpointError, match=match):
        LMPPO.load(ckpt, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_weights_file_is_named_with_a_way_out(saved, damage) -> None:
    weights = saved[1] / "policy" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\0" * len(data))
    with pytest.raises(CheckpointError, match=f"policy/model.safetensors is {damage}") as err:
        LMPPO.load(saved[1], device="cpu")
    assert "resume from an earlier checkpoint" in str(err.value)
    shutil.copytree(saved[1], saved[1].with_name("ckpt.old"))  # as if a save were interrupted
    weights.write_bytes(data)
    shutil.copyfile(weights, saved[1].with_name("ckpt.old") / "policy" / "model.safetensors")
    weights.write_bytes(data[:-1])
    with pytest.raises(CheckpointError, match=r"the previous one is intact at .*ckpt\.old"):
        LMPPO.load(saved[1], device="cpu")


def test_a_weights_file_the_manifest_vouches_for_still_names_the_folder(saved) -> None:
    weights = saved[1] / "policy" / "model.safetensors"
    weights.write_bytes(b"\xff" * 64)
    rehash(saved[1], "policy/model.safetensors")
    with pytest.raises(CheckpointError, match=r"weights file in .*ckpt/policy cannot be read"):
        LMPPO.load(saved[1], device="cpu")


def test_a_save_killed_between_its_renames_falls_back_to_old(saved) -> None:
    agent, ckpt = saved
    old = ckpt.with_name("ckpt.old")
    os.replace(ckpt, old)  # the state a kill between path -> path.old and tmp -> path leaves
    with pytest.warns(UserWarning, match="loading the previous checkpoint"):
        LMPPO.load(ckpt, device="cpu")
    ckpt.mkdir()  # an incomplete folder (no manifest) is passed over too
    (ckpt / "state.json").write_text("{}")
    with pytest.warns(UserWarning, match="loading the previous checkpoint"):
        LMPPO.load(ckpt, device="cpu")
    agent.save(ckpt)
    assert (ckpt / "checkpoint.json").is_file() and not old.exists()


def test_stale_temp_folders_are_removed_by_the_next_save(saved) -> None:
    agent, ckpt = saved
    stale = ckpt.with_name("ckpt.tmp-99999-deadbeef")
    (stale / "policy").mkdir(parents=True)
    (stale / "policy" / "model.safetensors").write_bytes(b"half")
    agent.save(ckpt)
    assert sorted(os.listdir(ckpt.parent)) == ["ckpt"]


def make_read_only(folder: Path) -> None:
    """chmod for a normal user; root ignores modes, so the immutable flag (where supported)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0 or os.access(folder, os.W_OK):
        pytest.skip("cannot make a folder read-only for root on this file system")


def make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
    folder.chmod(0o755)


@pytest.mark.parametrize("which", ["checkpoint", "parent"])
def test_a_read_only_folder_fails_before_anything_is_replaced(saved, which) -> None:
    agent, ckpt = saved
    before = (ckpt / "checkpoint.json").read_bytes()
    folder = ckpt if which == "checkpoint" else ckpt.parent
    make_read_only(folder)
    try:
        with pytest.raises(PermissionError, match="read-only.*Nothing was changed"):
            agent.save(ckpt)
    finally:
        make_writable(folder)
    assert (ckpt / "checkpoint.json").read_bytes() == before
    assert sorted(os.listdir(ckpt.parent)) == ["ckpt"]
    LMPPO.load(ckpt, device="cpu")


def test_a_callable_schedule_is_refused_at_save(agent_factory, tmp_path) -> None:
    agent = agent_factory(learning_rate=lambda progress: 1e-3 * progress)
    with pytest.raises(TypeError, match="learning_rate is a schedule.*Pass learning_rate as a"):
        agent.save(tmp_path / "ckpt")
    assert not os.listdir(tmp_path)

"""``rlhf-gym train-ppo --algo grpo|rloo`` through the CLI, on tiny toy-like pieces."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


@pytest.fixture
def toy_like(tmp_path: Path, lm_factory) -> Path:
    from rlhf_gym.toy.grammar import ToyWorld
    from rlhf_gym.toy.tokenizer import save_tokenizer

    tokenizer = save_tokenizer(tmp_path / "tokenizer")
    lm_factory("gpt2", vocab_size=len(tokenizer)).save_pretrained(tmp_path / "policy")
    world = ToyWorld()
    (tmp_path / "train.txt").write_text("\n".join(world.train_prompts))
    (tmp_path / "heldout.txt").write_text("\n".join(world.heldout_prompts))
    return tmp_path


def command(d: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train-ppo", "--policy", str(d / "policy"), "--tokenizer", str(d / "tokenizer"),
        "--reward", "gold", "--prompts", str(d / "train.txt"),
        "--eval-prompts", str(d / "heldout.txt"), "--iterations", "2", "--num-envs", "4",
        "--max-new-tokens", "6", "--batch-size", "2", "--curve-samples", "2",
        "--device", "cpu", "--output-dir", str(out), "--report-to", "csv", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_train_ppo_algo_runs_two_iterations(toy_like: Path, algo: str) -> None:
    from rlhf_gym.scripts.cli import main

    out = toy_like / f"run-{algo}"
    assert main(command(toy_like, out, "--algo", algo, "--group-size", "2")) == 0
    with open(out / "curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    # each round counts its whole budget (n_steps = max_new_tokens, times num_envs), like PPO
    assert [int(r["timesteps"]) for r in rows] == [0, 6 * 4, 2 * 6 * 4]
    with open(out / "logs" / "progress.csv") as handle:
        logged = [r for r in csv.DictReader(handle) if r.get("loss/policy")]
    assert len(logged) == 2  # one update per iteration
    assert all(float(r["loss/kl"]) >= 0 and not r.get("loss/value") for r in logged)
    assert (out / "final" / "policy" / "model.safetensors").is_file()
    assert not (out / "final" / "policy" / "value_head.safetensors").exists()


def test_group_size_must_fit_the_rows(toy_like: Path, capsys) -> None:
    from rlhf_gym.scripts.cli import main

    out = toy_like / "bad"
    assert main(command(toy_like, out, "--algo", "rloo", "--group-size", "3")) == 2
    assert "multiple of group_size" in capsys.readouterr().err

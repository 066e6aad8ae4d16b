import json
import subprocess
import sys

import numpy as np
import pytest
from rlhf_gym.reward_models import RewardModel, init_reward_model, load_reward_model
from rlhf_gym.scripts.evaluate import main


@pytest.fixture
def saved(tmp_path, tokenizer, make_gpt2):
    paths = {name: tmp_path / name for name in ("policy", "ref", "rm")}
    for name, seed, sharp in [("policy", 0, 6.0), ("ref", 1, 1.0)]:
        make_gpt2(seed, sharp).save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    network = init_reward_model(paths["ref"], pad_token_id=tokenizer.pad_token_id)
    RewardModel(network, tokenizer, device="cpu").save_pretrained(paths["rm"])
    paths["prompts"] = tmp_path / "prompts.txt"
    paths["prompts"].write_text("review of the phone :\n\nit is\nthe cat is\n")
    return paths


def test_evaluate_script_with_explicit_models_writes_consistent_json(saved, tmp_path, capsys):
    out = tmp_path / "out" / "eval.json"
    status = main([
        "--policy", str(saved["policy"]), "--reference", str(saved["ref"]),
        "--reward", "none", "--reward-model", str(saved["rm"]), "--prompts", str(saved["prompts"]),
        "--num-prompts", "2", "--eval-samples", "3", "--max-new-tokens", "8",
        "--device", "cpu", "--output-dir", str(out.parent),
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "reward_mean" in printed and "kl_mean" in printed
    data = json.loads(out.read_text())
    samples = data["samples"]
    assert [s["prompt"] for s in samples] == ["review of the phone :"] * 3 + ["it is"] * 3
    assert all("kl" in s and "gold" not in s for s in samples)
    assert data["aggregates"]["kl_mean"] > 0.3  # peaked policy vs near-uniform reference
    rm = load_reward_model(saved["rm"], device="cpu")
    expected = rm.score([s["prompt"] for s in samples], [s["completion"] for s in samples])
    np.testing.assert_allclose([s["score"] for s in samples], expected, rtol=1e-4, atol=1e-5)
    assert data["settings"]["policy"] == str(saved["policy"])


def test_runs_as_a_subcommand_and_stand_alone(capsys):
    from rlhf_gym.scripts.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main(["evaluate", "--help"])
    assert exit_info.value.code == 0 and "--reward-model" in capsys.readouterr().out
    result = subprocess.run([sys.executable, "-m", "rlhf_gym.scripts.evaluate", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--reward-model" in result.stdout

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rlhf_gym.reward_models import load_reward_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_reward_model.py"


def test_script_help_runs_stand_alone():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    assert "--center-coef" in out.stdout and "--truncation {error,left}" in out.stdout


def test_cli_subcommand_help(capsys):
    from rlhf_gym.scripts.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train-rm", "--help"])
    assert exit_info.value.code == 0 and "--base-model" in capsys.readouterr().out


def test_script_trains_on_own_data(sft_dir, tmp_path):
    words = ["the", "a", "cat", "dog", "is", "was", "very"]
    rows = [
        {
            "prompt": f"{words[i % 7]} {words[(i * 3) % 7]}",
            "chosen": f"{words[(i * 5) % 7]} good",
            "rejected": f"{words[(i * 5) % 7]} bad",
        }
        for i in range(60)
    ]
    data = tmp_path / "prefs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "rm"
    args = [
        "--preferences",
        str(data),
        "--base-model",
        str(sft_dir),
        "--output-dir",
        str(out),
        "--rm-epochs",
        "1",
        "--norm-samples",
        "32",
        "--check-samples",
        "32",
        "--max-new-tokens",
        "8",
        "--eval-fraction",
        "0.2",
    ]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "held-out accuracy" in result.stdout and "Spearman(RM, length in words)" in result.stdout
    rm = load_reward_model(out)
    assert rm.gain != 1.0 and rm.score(["the cat"], ["is good"]).shape == (1,)

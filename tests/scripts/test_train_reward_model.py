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


@pytest.mark.parametrize("tracker", ["csv", "tensorboard"])
def test_report_to_writes_the_reward_models_curves(sft_dir, tmp_path, tracker):
    import csv

    from rlhf_gym.scripts.cli import main

    rows = [{"prompt": f"the cat {i % 5}", "chosen": "is good", "rejected": "is bad"}
            for i in range(40)]
    data = tmp_path / "prefs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "rm"
    assert main(["train-rm", "--preferences", str(data), "--base-model", str(sft_dir),
                 "--output-dir", str(out), "--rm-epochs", "2", "--norm-samples", "8",
                 "--check-samples", "8", "--max-new-tokens", "4", "--logging-steps", "1",
                 "--report-to", tracker]) == 0
    if tracker == "csv":
        with open(out / "logs" / "log.csv") as handle:
            logged = list(csv.DictReader(handle))
        accuracy = [float(r["eval_accuracy"]) for r in logged if r.get("eval_accuracy")]
    else:
        from tracking import tensorboard_scalars

        accuracy = tensorboard_scalars(out / "logs")["eval/accuracy"]
    # one per epoch, then the final evaluation
    assert len(accuracy) == 3 and all(0.0 <= a <= 1.0 for a in accuracy)
    assert (out / "calibration.json").is_file()

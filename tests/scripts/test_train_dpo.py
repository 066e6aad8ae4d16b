import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rlhf_gym.scripts.cli import main
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_dpo.py"


@pytest.fixture
def pairs(tmp_path) -> Path:
    good, bad = "it is good .", "it is bad ."
    rows = [{"prompt": f"review of the {item} :", "chosen": good, "rejected": bad}
            for item in ("phone", "cat", "dog") for _ in range(10)]  # fmt: skip
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_script_help_runs_stand_alone():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    assert "--kl-coef" in out.stdout and "--dpo-epochs" in out.stdout


def test_trains_own_model_and_saves_a_plain_transformers_folder(sft_dir, pairs, tmp_path, capsys):
    out = tmp_path / "dpo"
    code = main(["train-dpo", "--policy", str(sft_dir), "--preferences", str(pairs),
                 "--output-dir", str(out), "--dpo-epochs", "1", "--batch-size", "8",
                 "--eval-fraction", "0.2", "--eval-samples", "0", "--no-print-logs"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    folder = out / "final" / "policy"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert GenerationConfig.from_pretrained(folder).eos_token_id == tokenizer.eos_token_id
    start = AutoModelForCausalLM.from_pretrained(sft_dir)
    after, before = model.state_dict().values(), start.state_dict().values()
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    record = json.loads((out / "train_dpo.json").read_text())
    assert record["world"] == "own" and record["metrics"]["train_pairs"] == 24
    assert "held-out implicit-reward accuracy" in capsys.readouterr().out


def test_evaluates_own_model_with_a_reward_model(sft_dir, pairs, tmp_path, capsys):
    from hf_models import save_gpt2_reward_model

    rm = save_gpt2_reward_model(tmp_path / "rm")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("review of the phone :\nreview of the dog :\n")
    out = tmp_path / "dpo"
    code = main(["train-dpo", "--policy", str(sft_dir), "--preferences", str(pairs),
                 "--output-dir", str(out), "--dpo-epochs", "1", "--batch-size", "8",
                 "--eval-fraction", "0.2", "--eval-samples", "2", "--max-new-tokens", "4",
                 "--reward-model", str(rm), "--eval-prompts", str(prompts),
                 "--no-print-logs"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "eval.json").read_text())
    assert result["aggregates"]["num_samples"] == 4 and result["aggregates"]["kl_mean"] is not None
    assert (out / "eval_start.json").is_file() and "kl_mean" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "missing"),
    [
        (["--policy", "{sft}"], "--preferences"),
        (["--preferences", "{pairs}"], "--policy"),
        (["--policy", "{sft}", "--preferences", "{pairs}"], "--eval-prompts and --reward-model"),
    ],
)
def test_one_real_piece_needs_the_other(sft_dir, pairs, tmp_path, capsys, flags, missing):
    argv = [f.format(sft=sft_dir, pairs=pairs) for f in flags]
    assert main(["train-dpo", *argv, "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert missing in err and not (tmp_path / "out").exists()

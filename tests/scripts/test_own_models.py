"""A user's own model, data and reward model, end to end through the CLI (docs/own_models.md).

The stand-ins are tiny (``tests/hf_models.py``): a chat Llama policy that stops on ``</s>`` or
``<|end|>``, a BERT and a GPT-2 reward model with tokenizers of their own. Every command runs
in-process through ``rlhf_gym.scripts.cli.main`` with tiny budgets. Naming one real piece and
leaving another out is an error (exit 2) that names the missing flag, before any model loads.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hf_models import save_bert_reward_model, save_chat_llama, save_gpt2_reward_model
from rlhf_gym.scripts.cli import main

datasets = pytest.importorskip("datasets")
pytest.importorskip("peft")

ITEMS = ["cat", "dog", "bird", "movie", "film", "book"]
USER = [{"role": "user", "content": f"tell me about the {item}"} for item in ITEMS]
RM_FLAGS = [
    "--rm-epochs", "1", "--batch-size", "4", "--eval-fraction", "0.25", "--max-length", "64",
    "--norm-samples", "8", "--check-samples", "8", "--max-new-tokens", "4",
]  # fmt: skip
PPO_FLAGS = [
    "--iterations", "2", "--num-envs", "4", "--max-new-tokens", "6", "--batch-size", "4",
    "--curve-samples", "2", "--device", "cpu", "--threads", "1",
]  # fmt: skip


def cli(*argv: object) -> int:
    return main([str(a) for a in argv])


def reply(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def pair_rows(kind: str) -> list[dict]:
    """Twelve preference rows of one format (docs/data_formats.md)."""
    rows = []
    for index, item in enumerate(ITEMS * 2):
        good, bad = f"the {item} is good", f"the {item} is bad"
        user = USER[index % len(ITEMS)]
        if kind == "explicit":
            rows.append({"prompt": user["content"], "chosen": good, "rejected": bad})
        elif kind == "hh":
            ask = f"\n\nHuman: {user['content']}\n\nAssistant: "
            rows.append({"chosen": ask + good, "rejected": ask + bad})
        elif kind == "conversational":
            rows.append({"chosen": [user, reply(good)], "rejected": [user, reply(bad)]})
        else:  # h4: a string prompt, and lists that hold the user turn then the reply
            rows.append({"prompt": user["content"], "chosen": [user, reply(good)],
                         "rejected": [user, reply(bad)], "score_chosen": 8.0})  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The stand-in models, preference data of every format and a prompts dataset."""
    root = tmp_path_factory.mktemp("own")
    paths = {
        "sft": save_chat_llama(root / "sft"),
        "bert": save_bert_reward_model(root / "bert"),
        "gpt2": save_gpt2_reward_model(root / "gpt2"),
        "explicit": root / "prefs.jsonl",
        "hh": root / "hh.jsonl",
        "conversational": root / "chat.jsonl",
        "h4": root / "h4",
        "save_to_disk": root / "saved",
        "prompts": root / "prompts",
    }
    for kind in ("explicit", "hh", "conversational"):
        paths[kind].write_text("".join(json.dumps(r) + "\n" for r in pair_rows(kind)))
    h4 = datasets.Dataset.from_list(pair_rows("h4"))
    datasets.DatasetDict({"train_prefs": h4, "test_prefs": h4}).save_to_disk(str(paths["h4"]))
    datasets.Dataset.from_list(pair_rows("explicit")).save_to_disk(str(paths["save_to_disk"]))
    questions = [{"question": [message]} for message in USER]  # message lists: chat-templated
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list(questions[:4]),
        "test": datasets.Dataset.from_list(questions[4:]),
    }).save_to_disk(str(paths["prompts"]))  # fmt: skip
    return paths


@pytest.fixture(scope="module")
def reward_model(world: dict[str, Path]) -> Path:
    """A reward model trained by train-rm from the chat Llama on the explicit JSONL pairs."""
    out = world["sft"].parent / "rm"
    assert cli("train-rm", "--base-model", world["sft"], "--preferences", world["explicit"],
               "--output-dir", out, *RM_FLAGS) == 0  # fmt: skip
    return out


def ppo(world: dict[str, Path], reward_model: Path, out: Path, *extra: object) -> int:
    """train-ppo of the chat Llama on the prompts dataset, held out from its test split."""
    return cli(
        "train-ppo", "--policy", world["sft"], "--reward-model", reward_model,
        "--prompts", world["prompts"], "--prompt-column", "question",
        "--eval-prompts-split", "test", "--output-dir", out, *PPO_FLAGS, *extra,
    )  # fmt: skip


def curves(out: Path) -> list[dict[str, str]]:
    with open(out / "curves.csv") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- no silent toy pieces

MISSING = [
    (["train-rm", "--base-model", "{sft}"], ["--preferences"]),
    (["train-rm", "--preferences", "{explicit}"], ["--base-model"]),
    (["train-ppo", "--policy", "{sft}"], ["--prompts"]),
    (["train-ppo", "--policy", "{sft}", "--prompts", "{prompts}"],
     ["--eval-prompts", "--eval-prompts-split"]),
    (["train-ppo", "--policy", "{sft}", "--prompts", "{prompts}", "--eval-prompts-split", "test"],
     ["--reward-model", "--reward module:function"]),
    (["train-ppo", "--reward-model", "{gpt2}"], ["--policy", "--policy toy"]),
    (["train-ppo", "--prompts", "{prompts}"], ["--policy"]),
    (["evaluate", "--policy", "{sft}"], ["--prompts"]),
    (["evaluate", "--policy", "{sft}", "--prompts", "{prompts}"], ["--reward-model"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "words"), MISSING, ids=[" ".join(c[0]) for c in MISSING])
def test_a_missing_piece_is_an_error_naming_its_flag(argv, words, world, capsys) -> None:
    assert cli(*[a.format(**world) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "toy world" in err, err
    for word in words:
        assert word in err, (word, err)


def test_a_reward_model_trained_on_the_toy_world_keeps_the_toy_world(tmp_path) -> None:
    from rlhf_gym.training.config import TrainPPOConfig
    from rlhf_gym.training.sources import RM_RECORD, own_pieces, uses_toy_world

    (tmp_path / RM_RECORD).write_text(json.dumps({"world": "toy"}))
    assert uses_toy_world(TrainPPOConfig(reward_model=str(tmp_path)))
    (tmp_path / RM_RECORD).write_text(json.dumps({"world": "own"}))
    assert own_pieces(TrainPPOConfig(reward_model=str(tmp_path))) == ["--reward-model"]
    assert uses_toy_world(TrainPPOConfig(reward_model=str(tmp_path), policy="toy"))


# ---------------------------------------------------------------- train-rm on each format


def test_train_rm_saves_a_folder_that_loads(world, reward_model) -> None:
    from rlhf_gym.reward_models import load_reward_model
    from transformers import AutoTokenizer

    record = json.loads((reward_model / "train_rm.json").read_text())
    assert record["world"] == "own" and record["base_model"] == str(world["sft"])
    assert AutoTokenizer.from_pretrained(reward_model).chat_template  # the policy's tokenizer
    rm = load_reward_model(reward_model, device="cpu")
    assert rm.gain != 1.0 and rm.score(["tell me about the cat"], ["it is good"]).shape == (1,)


@pytest.mark.parametrize("kind", ["hh", "conversational", "h4", "save_to_disk"])
def test_train_rm_reads_every_format(kind, world, tmp_path, capsys) -> None:
    split = ["--split", "train_prefs"] if kind == "h4" else []
    out = tmp_path / "rm"
    assert cli("train-rm", "--base-model", world["sft"], "--preferences", world[kind], *split,
               "--output-dir", out, *RM_FLAGS) == 0  # fmt: skip
    assert "on 9 pairs (0 rows skipped" in capsys.readouterr().out  # 12 pairs, 3 held out
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()


def test_train_rm_refuses_a_split_the_data_lacks(world, tmp_path, capsys) -> None:
    assert cli("train-rm", "--base-model", world["sft"], "--preferences", world["h4"],
               "--output-dir", tmp_path, *RM_FLAGS) == 2  # fmt: skip
    assert "train_prefs" in capsys.readouterr().err  # the splits it has


# ---------------------------------------------------------------- train-ppo, then evaluate


@pytest.fixture(scope="module")
def run(world, reward_model) -> Path:
    """A two-iteration train-ppo run with the train-rm reward model."""
    out = world["sft"].parent / "ppo"
    assert ppo(world, reward_model, out) == 0
    return out


def test_train_ppo_with_that_reward_model(run) -> None:
    rows = curves(run)
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert all(r["proxy"] not in ("", "nan") for r in rows)
    assert "gold" not in rows[0]  # no gold utility outside the toy world


def test_the_saved_policy_loads_with_plain_transformers(world, run) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder = run / "final" / "policy"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template and tokenizer.eos_token == "</s>"
    stops = GenerationConfig.from_pretrained(folder).eos_token_id
    assert set(stops) == set(tokenizer.convert_tokens_to_ids(["</s>", "<|end|>"]))
    ids = tokenizer("tell me about the cat", return_tensors="pt")["input_ids"]
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] <= ids.shape[1] + 3


def test_evaluate_reads_the_runs_output_folder(world, reward_model, run, tmp_path) -> None:
    assert cli("evaluate", "--policy", run, "--reward-model", reward_model,
               "--prompts", world["prompts"], "--prompts-split", "test",
               "--prompt-column", "question", "--eval-samples", "2", "--max-new-tokens", "6",
               "--device", "cpu", "--output-dir", tmp_path) == 0  # fmt: skip
    settings = json.loads((tmp_path / "eval.json").read_text())["settings"]
    assert settings["policy"] == str(run / "final" / "policy")
    assert settings["reference"] == str(world["sft"])  # the run's starting policy: KL measured


@pytest.mark.parametrize("rm", ["bert", "gpt2"])
def test_train_ppo_with_a_reward_model_of_another_family(rm, world, tmp_path) -> None:
    out = tmp_path / "run"
    assert ppo(world, world[rm], out, "--iterations", "1") == 0
    assert all(r["proxy"] not in ("", "nan") for r in curves(out))


def test_lora_in_bf16_writes_adapters_and_a_merged_model(world, reward_model, tmp_path):
    from rlhf_gym.training.outputs import find_policy
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    assert ppo(world, reward_model, out, "--lora-r", "2", "--dtype", "bfloat16") == 0
    assert (out / "final" / "policy" / "adapter_model.safetensors").is_file()
    merged = out / "final" / "merged"
    assert AutoModelForCausalLM.from_pretrained(merged).dtype == torch_bf16()  # the frozen base
    assert find_policy(out) == str(merged)


def torch_bf16():
    import torch

    return torch.bfloat16


def test_the_prompt_budget_is_derived_from_the_model(world) -> None:
    from rlhf_gym.lm.loading import load_tokenizer
    from rlhf_gym.training.config import TrainPPOConfig
    from rlhf_gym.training.sources import PPOSources, prompt_budget

    tokenizer = load_tokenizer(world["sft"])
    sources = PPOSources(str(world["sft"]), str(world["sft"]), tokenizer,
                         ["the cat is good"], ["a dog"])  # fmt: skip
    assert prompt_budget(TrainPPOConfig(max_new_tokens=6), sources) == 5  # <s> + 4 words
    assert prompt_budget(TrainPPOConfig(max_new_tokens=125), sources) == 3  # 128 positions
    assert prompt_budget(TrainPPOConfig(max_prompt_tokens=7), sources) == 7
    with pytest.raises(ValueError, match="--max-new-tokens"):
        prompt_budget(TrainPPOConfig(max_new_tokens=128), sources)

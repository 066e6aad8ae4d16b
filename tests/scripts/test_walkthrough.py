"""docs/own_models.md runs as written: every ```bash block, with tiny stand-ins for its names.

The placeholders (``my-sft-model``, ``my-prefs.jsonl``, ...) become a tiny chat Llama and small
data files; ``--device cuda`` becomes ``--device cpu``. Each command runs in-process through
``rlhf_gym.scripts.cli.main`` in a fresh working folder, in the order the page gives them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from hf_models import save_chat_llama
from rlhf_gym.scripts.cli import main

pytest.importorskip("peft")

PAGE = Path(__file__).resolve().parents[2] / "docs" / "own_models.md"
ITEMS = ["cat", "dog", "bird", "movie", "film", "book"]


def bash_commands(text: str) -> list[list[str]]:
    """The commands of every ```bash block, line continuations joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Placeholder name -> tiny stand-in; the working folder is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    pairs = [
        {"prompt": f"tell me about the {item}", "chosen": f"the {item} is good",
         "rejected": f"the {item} is bad"}
        for item in ITEMS * 2
    ]  # fmt: skip
    files = {
        "my-prefs.jsonl": pairs,
        "my-prompts.jsonl": [{"prompt": f"tell me about the {item}"} for item in ITEMS[:4]],
        "my-eval-prompts.jsonl": [{"prompt": f"what about the {item}"} for item in ITEMS[4:]],
    }
    names = {"my-sft-model": str(save_chat_llama(tmp_path / "sft")), "cuda": "cpu"}
    for name, rows in files.items():
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
        names[name] = str(tmp_path / name)
    return names


def test_the_page_names_its_placeholders_and_commands() -> None:
    commands = bash_commands(PAGE.read_text())
    assert [c[:2] for c in commands] == [
        ["rlhf-gym", "train-rm"], ["rlhf-gym", "train-ppo"], ["rlhf-gym", "evaluate"],
        ["rlhf-gym", "train-ppo"],
    ]  # fmt: skip
    words = {word for command in commands for word in command}
    assert {"my-sft-model", "my-prefs.jsonl", "my-prompts.jsonl", "cuda"} <= words


def test_the_walkthrough_runs_on_tiny_models(stand_ins: dict[str, str], capsys) -> None:
    for command in bash_commands(PAGE.read_text()):
        argv = [stand_ins.get(word, word) for word in command[1:]]
        assert main(argv) == 0, (argv, capsys.readouterr().err[-2000:])
    for folder in ("runs/my-rm", "runs/my-ppo/final/policy", "runs/my-ppo-lora/final/merged"):
        assert (Path(folder) / "model.safetensors").is_file(), folder
    assert Path("runs/my-eval/eval.json").is_file()

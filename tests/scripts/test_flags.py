"""One name per concept: every subcommand's --help, walked, never spells a concept two ways.

The concepts and their one name are the README's table; each group below lists the spellings
a concept has had (or could drift to). A group may appear in several subcommands, but always
under one spelling.
"""

from __future__ import annotations

import re

import pytest
from rlhf_gym.scripts.cli import SUBCOMMANDS, build_parser

SPELLINGS: dict[str, set[str]] = {
    "output folder": {"out", "out-dir", "output-dir", "runs-dir", "json", "output", "name"},
    "toy-world cache root": {"toy-dir", "toy-cache", "cache-dir"},
    "toy-world seed": {"world-seed", "toy-seed"},
    "reward-model epochs": {"epochs", "rm-epochs", "num-train-epochs"},
    "PPO epochs per rollout": {"n-epochs", "ppo-epochs", "num-epochs"},
    "held-out samples per prompt, per iteration": {"eval-per-prompt", "curve-samples"},
    "held-out samples per prompt, one evaluation": {
        "num-samples-per-prompt",
        "eval-samples",
        "samples-per-prompt",
    },
    "KL coefficient": {"init-kl-coef", "kl-coef", "beta"},
    "progress bars": {"progress", "progress-bar"},
    "experiment tracking": {"report-to", "tracking", "logger"},
    "precision": {"dtype", "torch-dtype", "precision", "bf16", "fp16", "half"},
    "column holding the prompts": {"prompt-column", "prompts-column", "column", "text-column"},
    "split the prompts come from": {"prompts-split", "prompt-split"},
}


def help_texts() -> dict[str, str]:
    """--help of every subcommand (``toy`` through its ``build`` and ``info``)."""
    texts = {}
    for name, _, _ in SUBCOMMANDS:
        parser = build_parser(name)
        sub = parser._subparsers._group_actions[0].choices[name]  # noqa: SLF001
        texts[name] = sub.format_help()
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        for action in nested:
            for child, child_parser in action.choices.items():
                texts[f"{name} {child}"] = child_parser.format_help()
    return texts


def flags(text: str) -> set[str]:
    """Long options, underscores read as dashes, ``no-`` forms read as their flag."""
    found = {m.replace("_", "-") for m in re.findall(r"--([a-z][a-z0-9_-]*)", text)}
    return {f.removeprefix("no-") for f in found}


@pytest.mark.parametrize("concept", list(SPELLINGS))
def test_no_concept_is_spelled_two_ways(concept: str) -> None:
    used: dict[str, list[str]] = {}
    for command, text in help_texts().items():
        for spelling in flags(text) & SPELLINGS[concept]:
            used.setdefault(spelling, []).append(command)
    assert len(used) <= 1, f"{concept} is spelled {used}"


def test_seed_is_the_run_and_world_seed_the_toy_world() -> None:
    texts = help_texts()
    assert "seed" not in flags(texts["toy build"])  # the toy build's only seed is the world's
    for command in ("train-rm", "train-ppo", "demo", "evaluate"):
        assert {"seed", "world-seed"} <= flags(texts[command]), command


def test_help_has_one_default_per_flag() -> None:
    for command, text in help_texts().items():
        assert not re.search(r"\(default: [^)]*\)\s*\(default:", text), command


def test_own_model_flags_are_where_the_walkthrough_uses_them() -> None:
    texts = help_texts()
    assert {"dtype", "preferences", "split", "base-model"} <= flags(texts["train-rm"])
    assert {
        "dtype",
        "prompts-split",
        "prompt-column",
        "eval-prompts-split",
        "eval-prompt-column",
        "reward-model",
        "lora-r",
    } <= flags(texts["train-ppo"])
    assert {"dtype", "prompts-split", "prompt-column"} <= flags(texts["evaluate"])

"""The bad-input catalogue: every case fails early, with its type or exit status 2, and words
that name the problem; no CLI case shows a traceback.

CLI cases run ``rlhf_gym.scripts.cli.main`` in-process (stderr captured); API cases call the
library. Each case lists the key words its message must contain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from word_lm import tiny_lm, word_tokenizer

WORDS = ["review", "of", "the", "phone", ":", "good", "bad", "it", "is"]

# (argv, key words). {tmp} is a fresh folder; {txt} an existing file there.
CLI_CASES: list[tuple[list[str], list[str]]] = [
    (["train-rm", "--rm-epochs", "-1"], ["--rm-epochs", ">= 0.0"]),
    (["train-rm", "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["train-rm", "--eval-fraction", "1.5"], ["--eval-fraction", "between 0.0 and 1.0"]),
    (["train-rm", "--warmup-ratio", "-0.1"], ["--warmup-ratio"]),
    (["train-rm", "--num-pairs", "1"], ["--num-pairs", ">= 2"]),
    (["train-rm", "--max-length", "1"], ["--max-length", ">= 2"]),
    (["train-rm", "--preferences", "{tmp}/nope.jsonl"], ["--preferences", "not found"]),
    (["train-rm", "--base-model", "/no/such/model"], ["--base-model", "not found"]),
    (["evaluate", "--policy", "/no/such/policy"], ["--policy", "not found"]),
    (["evaluate", "--eval-samples", "0"], ["--eval-samples", ">= 1"]),
    (["evaluate", "--max-new-tokens", "0"], ["--max-new-tokens", ">= 1"]),
    (["evaluate", "--temperature", "0"], ["--temperature"]),
    (["evaluate", "--num-prompts", "-2"], ["--num-prompts", ">= 0"]),
    (["evaluate", "--prompts", "{tmp}/missing.txt"], ["--prompts", "not found"]),
    (["evaluate", "--reward-model", "./no_rm_here"], ["--reward-model", "not found"]),
    (["evaluate", "--policy", "{tmp}"], ["your own model", "--prompts"]),
    (["train-ppo", "--max-prompt-tokens", "-1"], ["--max-prompt-tokens", ">= 0"]),
    (["train-ppo", "--eval-prompts", "{tmp}/nope.jsonl"], ["--eval-prompts", "not found"]),
    (["train-ppo", "--policy", "{tmp}", "--prompts", "{txt}"], ["--eval-prompts", "toy world"]),
    (["train-rm", "--base-model", "{tmp}"], ["--preferences", "toy world"]),
    (["demo", "--iterations", "0"], ["--iterations", ">= 1"]),
    (["demo", "--num-envs", "0"], ["--num-envs", ">= 1"]),
    (["demo", "--kl-coef", "-1"], ["--kl-coef", ">= 0.0"]),
    (["demo", "--kl-horizon", "0"], ["--kl-horizon", ">= 1"]),
    (["demo", "--ensemble", "0"], ["--ensemble", ">= 1"]),
    (["demo", "--curve-samples", "0"], ["--curve-samples", ">= 1"]),
    (["demo", "--config", "{tmp}/absent.yaml"], ["--config", "not found"]),
    (["demo", "--config", "{txt}"], ["--config", ".json, .yaml or .yml"]),
    (["toy", "build", "--num-pairs", "0"], ["--num-pairs", ">= 1"]),
    (["toy", "info", "--path", "{tmp}"], ["not a complete toy-world build"]),
    (["toy"], ["build or info"]),
]


@pytest.mark.parametrize(("argv", "words"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_user_error(argv, words, tmp_path: Path, capsys) -> None:
    from rlhf_gym.scripts.cli import main

    text = tmp_path / "settings.txt"
    text.write_text("iterations: 1\n")
    argv = [a.format(tmp=tmp_path, txt=text) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 2, err
    for word in words:
        assert word in err, (word, err)


@pytest.fixture
def env_kwargs() -> dict:
    tokenizer = word_tokenizer(WORDS)
    return {
        "tokenizer": tokenizer,
        "reference_model": tiny_lm("gpt2", len(tokenizer), seed=0),
        "prompts": ["review of the phone :"],
        "reward": lambda p, c: np.zeros(len(c)),
        "max_prompt_tokens": 6,
        "max_new_tokens": 3,
        "kl_coef": 0.0,
        "device": "cpu",
    }


def env(env_kwargs, **overrides):
    from rlhf_gym.envs import TextGenerationEnv

    return TextGenerationEnv(**{**env_kwargs, **overrides})


def started(env_kwargs, **overrides):
    e = env(env_kwargs, **overrides)
    e.reset(seed=0)
    return e


def check_scores(values, n=1):
    from rlhf_gym.reward_models import check_scores as check

    return check(values, n, "f")


def ensemble(members, aggregate="mean"):
    from rlhf_gym.reward_models import RewardEnsemble

    return RewardEnsemble(members, aggregate)


def terms():
    from rlhf_gym.envs import terms as t

    return t


# (id, action(env_kwargs, tmp_path), exception type, key words)
API_CASES = [
    ("reward returns strings", lambda k, t: check_scores(["0.5"]), ValueError, ["not numbers"]),
    ("reward returns None", lambda k, t: check_scores([None]), ValueError, ["not numbers"]),
    ("reward returns NaN", lambda k, t: check_scores([float("nan")]), ValueError, ["non-finite"]),
    ("reward returns inf", lambda k, t: check_scores([float("inf")]), ValueError, ["non-finite"]),
    ("reward wrong shape", lambda k, t: check_scores([1.0, 2.0]), ValueError, ["shape"]),
    ("reward not callable", lambda k, t: env(k, reward=42), TypeError, ["not a reward source"]),
    ("unknown kl_reward", lambda k, t: env(k, kl_reward="soft"), ValueError, ["kl_reward"]),
    ("unknown estimator", lambda k, t: env(k, kl_estimator="k2"), ValueError, ["kl_estimator"]),
    ("no new tokens", lambda k, t: env(k, max_new_tokens=0), ValueError, ["max_new_tokens"]),
    ("zero temperature", lambda k, t: env(k, temperature=0), ValueError, ["temperature"]),
    ("negative beta", lambda k, t: env(k, kl_coef=-1), ValueError, ["kl_coef", ">= 0"]),
    ("no prompts", lambda k, t: env(k, prompts=[]), ValueError, ["empty"]),
    ("prompt not text", lambda k, t: env(k, prompts=[3]), ValueError, ["strings"]),
    (
        "long prompt refused",
        lambda k, t: env(k, max_prompt_tokens=2, prompt_truncation="error"),
        ValueError,
        ["max_prompt_tokens"],
    ),
    ("step before reset", lambda k, t: env(k).step(3), RuntimeError, ["reset()"]),
    ("action out of range", lambda k, t: started(k).step(999), ValueError, ["action space"]),
    ("action not an int", lambda k, t: started(k).step(1.5), ValueError, ["integer"]),
    (
        "handover wrong shape",
        lambda k, t: started(k).batch.set_policy_logprobs([-1.0, -2.0]),
        ValueError,
        ["shape"],
    ),
    (
        "handover not a log-prob",
        lambda k, t: started(k).set_policy_logprob(0.5),
        ValueError,
        ["<= 0"],
    ),
    (
        "exact KL without log pi",
        lambda k, t: started(k, kl_coef=0.1).step(3),
        RuntimeError,
        ["log π_θ", "ref_logprob"],
    ),
    (
        "duplicate term",
        lambda k, t: env(k).batch.add_term(terms().ScoreTerm(np.zeros)),
        ValueError,
        ["already has a 'score' term"],
    ),
    (
        "length penalty mode",
        lambda k, t: terms().LengthPenalty(mode="multiply"),
        ValueError,
        ["mode"],
    ),
    ("top-p zero", lambda k, t: terms().TopPMask(k["reference_model"], 0.0), ValueError, ["top_p"]),
    (
        "frozen policy copy",
        lambda k, t: env(
            k, policy_model=tiny_lm("gpt2", len(k["tokenizer"]), seed=0).requires_grad_(False)
        ),
        ValueError,
        ["frozen copy"],
    ),
    ("empty ensemble", lambda k, t: ensemble([]), ValueError, ["at least one member"]),
    (
        "ensemble aggregate",
        lambda k, t: ensemble([k["reward"]], "median"),
        ValueError,
        ["aggregate"],
    ),
    (
        "missing reward model",
        lambda k, t: __import__("rlhf_gym.reward_models", fromlist=["x"]).load_reward_model(
            t / "rm"
        ),
        FileNotFoundError,
        ["not a saved rlhf_gym reward model"],
    ),
    (
        "config file unknown key",
        lambda k, t: config_file(t, "bogus: 1\n"),
        ValueError,
        ["unknown setting(s) bogus"],
    ),
]


def config_file(tmp_path: Path, text: str):
    from rlhf_gym.scripts.config import load_config_file
    from rlhf_gym.scripts.demo_config import DemoConfig

    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config_file(path, DemoConfig)


@pytest.mark.parametrize(
    ("name", "action", "error", "words"), API_CASES, ids=[c[0] for c in API_CASES]
)
def test_api_bad_input(name, action, error, words, env_kwargs, tmp_path: Path) -> None:
    with pytest.raises(error) as caught:
        action(env_kwargs, tmp_path)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_the_catalogue_has_at_least_forty_cases() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 40

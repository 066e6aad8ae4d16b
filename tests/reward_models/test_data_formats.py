"""Preference sources (files, folders, hub ids) and row formats (explicit, HH, chat, H4)."""

import json

import pytest
from hf_models import chat_tokenizer
from rlhf_gym.envs.prompts import format_prompt
from rlhf_gym.reward_models.data import PreferenceDataError, load_preferences

datasets = pytest.importorskip("datasets")

USER = {"role": "user", "content": "tell me about the cat"}
GOOD = {"role": "assistant", "content": "it is good"}
BAD = {"role": "assistant", "content": "it is bad"}
CHAT_PROMPT = "<s><|user|> tell me about the cat <|end|> <|assistant|> "
CHAT_PAIR = (CHAT_PROMPT, "it is good <|end|> ", "it is bad <|end|> ")
EXPLICIT = {"prompt": "say\nthe cat", "chosen": "is good", "rejected": "is bad"}


@pytest.fixture(scope="module")
def tok():
    return chat_tokenizer()


def triples(data):
    return [(pair.prompt, pair.chosen, pair.rejected) for pair in data.pairs]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def saved(tmp_path, rows, name="ds"):
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / name))
    return str(tmp_path / name)


def test_explicit_rows_from_jsonl_parquet_and_folder_keep_multiline_prompts(tmp_path):
    parquet = tmp_path / "prefs.parquet"
    datasets.Dataset.from_list([EXPLICIT]).to_parquet(str(parquet))
    expected = [("say\nthe cat", "is good", "is bad")]
    assert triples(load_preferences(write_jsonl(tmp_path / "p.jsonl", [EXPLICIT]))) == expected
    assert triples(load_preferences(parquet)) == expected
    assert triples(load_preferences(saved(tmp_path, [EXPLICIT]))) == expected


def test_hh_implicit_prompt_rows(tmp_path):
    row = {
        "chosen": "\n\nHuman: tell me about the cat\n\nAssistant: it is good",
        "rejected": "\n\nHuman: tell me about the cat\n\nAssistant: that was bad",
    }
    data = load_preferences(write_jsonl(tmp_path / "hh.jsonl", [row]))
    assert triples(data) == [
        ("\n\nHuman: tell me about the cat\n\nAssistant: ", "it is good", "that was bad")
    ]


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": [USER], "chosen": [GOOD], "rejected": [BAD]},
        {"chosen": [USER, GOOD], "rejected": [USER, BAD]},
        {"prompt": [USER], "chosen": [USER, GOOD], "rejected": [USER, BAD]},
        {"prompt": USER["content"], "chosen": [USER, GOOD], "rejected": [USER, BAD]},
        {"prompt": USER["content"], "chosen": [GOOD], "rejected": [BAD]},
        {
            "prompt": USER["content"],
            "chosen": [USER, GOOD],
            "rejected": [USER, BAD],
            "messages": [USER, GOOD],
            "score_chosen": 8.0,
            "score_rejected": 2.0,
        },
    ],
    ids=["trl-explicit", "trl-implicit", "list-prompt-in-lists", "h4", "h4-reply-only", "h4-full"],
)
def test_conversational_and_h4_rows_render_with_the_chat_template(tmp_path, tok, row):
    data = load_preferences(saved(tmp_path, [row]), tokenizer=tok)
    assert triples(data) == [CHAT_PAIR]
    assert data.pairs[0].prompt == format_prompt([USER], tok)


def test_h4_system_turn_in_the_lists_is_part_of_the_prompt(tmp_path, tok):
    system = {"role": "system", "content": "be brief"}
    row = {
        "prompt": USER["content"],
        "chosen": [system, USER, GOOD],
        "rejected": [system, USER, BAD],
    }
    pair = load_preferences(saved(tmp_path, [row]), tokenizer=tok).pairs[0]
    assert pair.prompt == "<s><|system|> be brief <|end|> " + CHAT_PROMPT.removeprefix("<s>")
    assert pair.chosen == "it is good <|end|> "


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"prompt": "tell me about the dog", "chosen": [USER, GOOD], "rejected": [USER, BAD]},
            "disagrees with the prompt turns",
        ),
        (
            {"prompt": [{**USER, "content": "why"}], "chosen": [USER, GOOD], "rejected": [BAD]},
            "share all messages but the last",
        ),
        (
            {
                "prompt": [{**USER, "content": "why"}],
                "chosen": [USER, GOOD],
                "rejected": [USER, BAD],
            },
            "disagrees with the prompt turns",
        ),
        ({"chosen": [GOOD], "rejected": [BAD]}, "no prompt"),
        ({"prompt": "q", "chosen": [GOOD], "rejected": "it is bad"}, "'rejected' must be a non"),
    ],
)
def test_bad_conversational_rows_raise(tok, row, message):
    with pytest.raises(PreferenceDataError, match=rf"row 0: .*{message}"):
        load_preferences([row], tokenizer=tok)


def test_conversational_rows_without_tokenizer_say_what_to_pass():
    with pytest.raises(PreferenceDataError, match="no tokenizer was given: pass tokenizer="):
        load_preferences([{"prompt": "q", "chosen": [GOOD], "rejected": [BAD]}])


def test_dataset_dict_folder_selects_split(tmp_path):
    splits = datasets.DatasetDict(
        train=datasets.Dataset.from_list([EXPLICIT]),
        test=datasets.Dataset.from_list([{**EXPLICIT, "prompt": "held out"}]),
    )
    splits.save_to_disk(str(tmp_path / "dd"))
    assert load_preferences(str(tmp_path / "dd")).pairs[0].prompt == "say\nthe cat"
    assert load_preferences(str(tmp_path / "dd"), split="test").pairs[0].prompt == "held out"
    with pytest.raises(PreferenceDataError, match=r"splits \['test', 'train'\], not 'dev'"):
        load_preferences(str(tmp_path / "dd"), split="dev")


def test_a_non_saved_folder_goes_through_load_dataset_like_a_hub_id(tmp_path):
    folder = tmp_path / "org_prefs"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [EXPLICIT])
    write_jsonl(folder / "test.jsonl", [{**EXPLICIT, "prompt": "held out"}])
    expected = datasets.load_dataset(str(folder), split="test")[0]["prompt"]
    assert load_preferences(str(folder), split="test").pairs[0].prompt == expected == "held out"
    with pytest.raises(PreferenceDataError, match="load_dataset.*split='dev'.*Unknown split"):
        load_preferences(str(folder), split="dev")


def test_missing_hub_id_raises_a_clear_error(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no retries against the hub
    with pytest.raises(
        PreferenceDataError,
        match=r"'nosuch-org/nosuch-prefs' is no local path, and datasets.load_dataset\("
        r".*could not load it.*Accepted: a .jsonl.*hub dataset id.*log in",
    ):
        load_preferences("nosuch-org/nosuch-prefs")


def test_bad_local_paths_name_the_accepted_types(tmp_path):
    with pytest.raises(PreferenceDataError, match="missing.jsonl: no such file or folder"):
        load_preferences(tmp_path / "missing.jsonl")
    text = tmp_path / "prefs.txt"
    text.write_text("a\n")
    with pytest.raises(PreferenceDataError, match=r"unknown file type '.txt'; accepted: a .jsonl"):
        load_preferences(text)
    one_file = write_jsonl(tmp_path / "p.jsonl", [EXPLICIT])
    with pytest.raises(PreferenceDataError, match="no splits, so split='test' cannot be chosen"):
        load_preferences(one_file, split="test")

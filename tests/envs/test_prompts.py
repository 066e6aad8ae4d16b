"""RL prompt sources and the one prompt formatting rule."""

import json

import pytest
from hf_models import chat_tokenizer
from rlhf_gym.envs.prompts import DataFormatError, format_prompt, read_prompts

USER = {"role": "user", "content": "tell me about the cat"}
REPLY = {"role": "assistant", "content": "it is good"}
CHAT_PROMPT = "<s><|user|> tell me about the cat <|end|> <|assistant|> "
ROWS = [{"prompt": "say\nthe cat :", "id": 0}, {"prompt": "tell me ", "id": 1}]


@pytest.fixture(scope="module")
def tok():
    return chat_tokenizer()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_read_prompts_text_and_jsonl(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("a b\n\n c \n")
    assert read_prompts(text) == ["a b", "c"]
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "x :"}\n{"prompt": "y :", "other": 1}\n')
    assert read_prompts(lines) == ["x :", "y :"]


def test_format_prompt_uses_strings_as_they_are_and_templates_messages(tok):
    assert format_prompt(" say\nthe cat ") == " say\nthe cat "
    assert format_prompt([USER], tok) == CHAT_PROMPT
    with pytest.raises(DataFormatError, match="no tokenizer was given: pass tokenizer="):
        format_prompt([USER])
    plain = chat_tokenizer()
    plain.chat_template = None
    with pytest.raises(DataFormatError, match="this tokenizer has none.*tokenizer.chat_template"):
        format_prompt([USER], plain)
    with pytest.raises(DataFormatError, match="end with an assistant reply"):
        format_prompt([USER, REPLY], tok)
    with pytest.raises(DataFormatError, match="a string or a non-empty list"):
        format_prompt([{"text": "hi"}], tok)


def file_source(tmp_path, kind):
    """``ROWS`` written as one source of ``kind``; returns (source, split)."""
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_list(ROWS)
    if kind == "jsonl":
        return write_jsonl(tmp_path / "p.jsonl", ROWS), "train"
    if kind == "json":
        (tmp_path / "p.json").write_text(json.dumps(ROWS))
        return tmp_path / "p.json", "train"
    if kind in ("csv", "parquet"):
        getattr(table, f"to_{kind}")(str(tmp_path / f"p.{kind}"))
        return tmp_path / f"p.{kind}", "train"
    if kind == "disk":
        table.save_to_disk(str(tmp_path / "ds"))
        return str(tmp_path / "ds"), "train"
    if kind == "dataset_dict":
        other = datasets.Dataset.from_list([{"prompt": "not me", "id": 2}])
        datasets.DatasetDict(train=other, test=table).save_to_disk(str(tmp_path / "dd"))
        return str(tmp_path / "dd"), "test"
    (tmp_path / "hub").mkdir()  # a folder of data files, read by load_dataset like a hub id
    write_jsonl(tmp_path / "hub" / "test.jsonl", ROWS)
    write_jsonl(tmp_path / "hub" / "train.jsonl", [{"prompt": "not me", "id": 2}])
    return str(tmp_path / "hub"), "test"


@pytest.mark.parametrize(
    "kind", ["jsonl", "json", "csv", "parquet", "disk", "dataset_dict", "data_files"]
)
def test_read_prompts_from_every_source_keeps_multiline_prompts_exactly(tmp_path, kind):
    source, split = file_source(tmp_path, kind)
    assert read_prompts(source, split=split) == ["say\nthe cat :", "tell me "]


def test_missing_hub_id_raises_a_clear_error(monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # no retries against the hub
    with pytest.raises(DataFormatError, match="'nosuch-org/nosuch' is no local path.*load_dataset"):
        read_prompts("nosuch-org/nosuch")


def test_message_prompts_are_templated_and_need_a_tokenizer(tmp_path, tok):
    source = write_jsonl(tmp_path / "chat.jsonl", [{"prompt": [USER]}, {"prompt": "plain"}])
    assert read_prompts(source, tokenizer=tok) == [CHAT_PROMPT, "plain"]
    with pytest.raises(DataFormatError, match="row 0 of column 'prompt': .*pass tokenizer="):
        read_prompts(source)


def test_a_conversation_column_gives_the_turns_before_its_final_reply(tok):
    turns = [USER, REPLY, {"role": "user", "content": "why"}, REPLY]
    prompts = read_prompts([{"messages": turns}], column="messages", tokenizer=tok)
    assert prompts == [CHAT_PROMPT + "it is good <|end|> <|user|> why <|end|> <|assistant|> "]


def test_preference_datasets_as_prompt_sources(tmp_path, tok):
    datasets = pytest.importorskip("datasets")
    from rlhf_gym.reward_models.data import load_preferences

    bad = {"role": "assistant", "content": "it is bad"}
    h4 = [{"prompt": USER["content"], "chosen": [USER, REPLY], "rejected": [USER, bad]}]
    datasets.Dataset.from_list(h4).save_to_disk(str(tmp_path / "h4"))
    assert read_prompts(str(tmp_path / "h4")) == [USER["content"]]
    # the chat-formatted prompt of an H4 row is exactly the reward model's prompt text
    chat = read_prompts(str(tmp_path / "h4"), column="chosen", tokenizer=tok)
    assert chat == [load_preferences(str(tmp_path / "h4"), tokenizer=tok).pairs[0].prompt]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"messages": [USER, REPLY]}], r"Column 'messages' holds conversations: pass column="),
        ([{"chosen": "q: yes", "rejected": "q: no"}], "implicit-prompt \\(HH-style\\).*column="),
        ([{"prompt": "q", "text": "a"}], "Pass column='prompt'"),
        ([{"text": "a"}], "Pass column=<name>"),
    ],
)
def test_missing_column_points_at_the_fix(rows, message):
    column = "query" if "prompt" in rows[0] else "prompt"
    with pytest.raises(DataFormatError, match=f"no column '{column}'.*{message}"):
        read_prompts(rows, column=column)


def test_empty_or_absent_prompts_raise(tmp_path):
    with pytest.raises(DataFormatError, match="row 1: the prompt in column 'prompt' is empty"):
        read_prompts([{"prompt": "a"}, {"prompt": "  "}])
    with pytest.raises(DataFormatError, match="row 1 of column 'prompt': a prompt must be"):
        read_prompts([{"prompt": "a"}, {"other": "b"}])
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataFormatError, match="holds no prompts"):
        read_prompts(tmp_path / "empty.txt")

import json

import pytest
from rlhf_gym.reward_models.data import PreferenceDataError, load_preferences
from rlhf_gym.reward_models.encoding import check_tokenizer, encode_pairs

GOOD = {"prompt": "the cat", "chosen": "is good", "rejected": "is bad"}
CHAT = "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} <eos> {% endfor %}"


def test_jsonl_and_dataset_load_the_same(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{**GOOD, "margin": None}, {**GOOD, "chosen": "was great", "margin": 0.5}]
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from_file = load_preferences(path)
    from_ds = load_preferences(datasets.Dataset.from_list(rows))
    assert from_file.pairs == from_ds.pairs
    assert from_file.pairs[1].margin == 0.5 and from_file.pairs[0].margin == 0.0
    ds_dir = tmp_path / "ds"
    datasets.Dataset.from_list(rows).save_to_disk(str(ds_dir))
    assert load_preferences(str(ds_dir)).pairs == from_file.pairs


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "q", "chosen": "good"}, "missing key 'rejected'"),
        ({"prompt": "q", "chosen": "  ", "rejected": "bad"}, "'chosen' completion is empty"),
        ({"prompt": "q", "chosen": 3, "rejected": "bad"}, "'chosen' must be a string"),
        ({"prompt": ["q"], "chosen": "good", "rejected": "bad"}, "'prompt' must be a string"),
        ({"prompt": "q", "chosen": "good", "rejected": "good"}, "identical"),
        ({**GOOD, "margin": "big"}, "'margin' must be a finite number"),
    ],
)
def test_bad_row_names_row_and_problem(row, message):
    with pytest.raises(PreferenceDataError, match=rf"row 1: .*{message}"):
        load_preferences([GOOD, row])


def test_skip_invalid_counts_every_skipped_row(caplog):
    rows = [
        GOOD,
        {"prompt": "q", "chosen": "a"},
        GOOD,
        {"prompt": "q", "chosen": "a", "rejected": "a"},
    ]
    data = load_preferences(rows, skip_invalid=True)
    assert len(data) == 2
    assert sorted(data.skipped) == [1, 3]
    assert "skipped 2 invalid" in caplog.text


def test_all_rows_invalid_raises_even_when_skipping():
    with pytest.raises(PreferenceDataError, match="no valid preference rows"):
        load_preferences([{"chosen": "a"}], skip_invalid=True)


def test_implicit_prompt_is_common_prefix_cut_at_a_word():
    data = load_preferences([{"chosen": "say the cat is good", "rejected": "say the cab is bad"}])
    pair = data.pairs[0]
    assert (pair.prompt, pair.chosen, pair.rejected) == ("say the ", "cat is good", "cab is bad")


def test_conversational_rows_use_chat_template(make_tokenizer):
    tok = make_tokenizer()
    tok.chat_template = CHAT
    row = {
        "prompt": [{"role": "user", "content": "the cat"}],
        "chosen": [{"role": "assistant", "content": "is good"}],
        "rejected": [{"role": "assistant", "content": "is bad"}],
    }
    pair = load_preferences([row], tokenizer=tok).pairs[0]
    assert pair.prompt == "user : the cat <eos> "
    assert (pair.chosen, pair.rejected) == (
        "assistant : is good <eos> ",
        "assistant : is bad <eos> ",
    )
    implicit = {
        "chosen": row["prompt"] + row["chosen"],
        "rejected": row["prompt"] + row["rejected"],
    }
    assert load_preferences([implicit], tokenizer=tok).pairs[0] == pair


def test_conversational_rows_without_template_raise(tokenizer):
    row = {
        "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}],
    }
    with pytest.raises(PreferenceDataError, match="row 0: .*chat template"):
        load_preferences([row], tokenizer=tokenizer)


def test_too_long_errors_by_default_and_left_truncation_keeps_completion(tokenizer):
    tok = tokenizer
    pairs = load_preferences(
        [{"prompt": "the cat " * 5, "chosen": "is good", "rejected": "is bad"}]
    ).pairs
    with pytest.raises(PreferenceDataError, match="pair 0: .*over max_length=6"):
        encode_pairs(pairs, tok, max_length=6)
    encoded = encode_pairs(pairs, tok, max_length=6, truncation="left")
    ids = tok.convert_ids_to_tokens(encoded.rows[0]["chosen_ids"])
    assert ids == ["cat", "the", "cat", "is", "good", "<eos>"]
    assert encoded.truncated == 1
    skipped = encode_pairs(pairs, tok, max_length=2, truncation="left", skip_invalid=True)
    assert skipped.rows == [] and skipped.skipped == 1


def test_completion_cut_at_first_eos_then_one_eos(tokenizer):
    tok = tokenizer
    pairs = load_preferences(
        [{"prompt": "q", "chosen": "good <eos> bad bad", "rejected": "bad"}]
    ).pairs
    row = encode_pairs(pairs, tok).rows[0]
    assert tok.convert_ids_to_tokens(row["chosen_ids"]) == ["q", "good", "<eos>"]


@pytest.mark.parametrize(
    ("pad", "pad_is_eos", "message"),
    [(False, False, "no pad token"), (True, True, "pad and eos are the same")],
)
def test_tokenizer_without_distinct_pad_raises(make_tokenizer, pad, pad_is_eos, message):
    with pytest.raises(PreferenceDataError, match=message):
        check_tokenizer(make_tokenizer(pad=pad, pad_is_eos=pad_is_eos))

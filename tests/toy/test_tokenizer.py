import numpy as np
from rlhf_gym.toy import ToyWorld, build_tokenizer
from rlhf_gym.toy.tokenizer import save_tokenizer
from transformers import AutoTokenizer


def test_round_trip_through_saved_tokenizer(tmp_path):
    save_tokenizer(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    world = ToyWorld()
    prompts, completions = world.sample(500, np.random.default_rng(0))
    for text in [*completions, *prompts]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text
    assert len(tokenizer) == len(build_tokenizer())


def test_special_tokens_and_padding_side():
    tokenizer = build_tokenizer()
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == "<eos>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"
    batch = tokenizer(["the phone is good .", "it is bad . it was a gift ."], padding=True)
    assert batch["input_ids"][0][0] == tokenizer.pad_token_id
    assert batch["attention_mask"][0][0] == 0
    ids = tokenizer("it is good . <eos>", add_special_tokens=False)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "it is good ."
    assert tokenizer("xyzzy")["input_ids"] == [tokenizer.unk_token_id]

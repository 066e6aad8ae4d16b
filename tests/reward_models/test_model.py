import math

import pytest
import torch
from rlhf_gym.reward_models.encoding import pad_batch
from rlhf_gym.reward_models.model import LinearHeadRewardModel, init_reward_model, reward_forward
from rlhf_gym.reward_models.reward_model import RewardModel, load_reward_model
from transformers import AutoModelForSequenceClassification

PROMPTS = ["the cat", "q", "a dog was"]
COMPLETIONS = ["is good", "say bad very bad", "not great"]


@pytest.mark.parametrize("arch", ["sft_dir", "llama_dir"])
def test_dropout_off_and_head_init(arch, request):
    model = init_reward_model(request.getfixturevalue(arch), pad_token_id=2, seed=0)
    assert all(v == 0.0 for k, v in vars(model.config).items() if "dropout" in k or "pdrop" in k)
    assert model.config.pad_token_id == 2
    head = model.score
    assert head.weight.shape == (1, 32)
    assert abs(head.weight.std().item() - 1 / math.sqrt(33)) < 0.08
    assert head.bias is None or torch.all(head.bias == 0)


@pytest.mark.parametrize("arch", ["sft_dir", "llama_dir"])
@pytest.mark.parametrize("head", ["auto", "linear"])
def test_left_and_right_padding_give_the_same_reward(arch, head, request):
    model = init_reward_model(request.getfixturevalue(arch), pad_token_id=2, head=head).eval()
    seqs = [[3, 4, 5, 1], [6, 1], [7, 8, 9, 10, 11, 1]]
    right_ids, right_mask = pad_batch(seqs, 2)
    width = right_ids.shape[1]
    left_ids = torch.stack(
        [torch.cat([torch.full((width - len(s),), 2), torch.tensor(s)]) for s in seqs]
    )
    left_mask = (
        torch.arange(width)[None] >= torch.tensor([width - len(s) for s in seqs])[:, None]
    ).long()
    with torch.no_grad():
        right = reward_forward(model, right_ids, right_mask)
        left = reward_forward(model, left_ids, left_mask)
        alone = torch.cat(
            [reward_forward(model, torch.tensor([s]), torch.ones(1, len(s))) for s in seqs]
        )
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-4)
    assert len(set(alone.round(decimals=4).tolist())) == 3


@pytest.mark.parametrize("head", ["auto", "linear"])
def test_save_load_round_trip_with_normalisation(sft_dir, tokenizer, tmp_path, head):
    rm = RewardModel(init_reward_model(sft_dir, pad_token_id=2, head=head), tokenizer, batch_size=2)
    gain, bias = rm.fit_normalisation(PROMPTS, COMPLETIONS)
    scores = rm.score(PROMPTS, COMPLETIONS)
    assert abs(scores.mean()) < 1e-6 and abs(scores.std() - 1) < 1e-6
    rm.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.bin")) and list(tmp_path.glob("*.safetensors"))
    loaded = load_reward_model(tmp_path)
    assert (loaded.gain, loaded.bias) == (gain, bias)
    assert loaded.score(PROMPTS, COMPLETIONS) == pytest.approx(scores, abs=1e-5)
    if head == "auto":  # plain transformers reads the raw score
        plain = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
        seqs = [
            tokenizer(f"{p} {c} <eos>")["input_ids"]
            for p, c in zip(PROMPTS, COMPLETIONS, strict=True)
        ]
        raw = rm.raw_scores(seqs)
        ids, mask = pad_batch(seqs, 2)
        with torch.no_grad():
            assert plain(input_ids=ids, attention_mask=mask).logits[:, 0].numpy() == pytest.approx(
                raw, abs=1e-5
            )
    else:
        assert isinstance(loaded.model, LinearHeadRewardModel)


def test_score_ids_matches_text_and_retokenizes_once(sft_dir, tokenizer, make_tokenizer):
    rm = RewardModel(init_reward_model(sft_dir, pad_token_id=2), tokenizer)
    p_ids = [tokenizer(p)["input_ids"] for p in PROMPTS]
    c_ids = [tokenizer(c)["input_ids"] + [1, 5] for c in COMPLETIONS]  # text after eos is ignored
    same = rm.score_ids(p_ids, c_ids, tokenizer=tokenizer)
    assert same == pytest.approx(rm.score(PROMPTS, COMPLETIONS), abs=1e-6)
    other = make_tokenizer()
    other.add_tokens(["zebra"])  # a different vocabulary: ids must be re-tokenized
    rm_other = RewardModel(rm.model, tokenizer, policy_tokenizer=other)
    with pytest.warns(UserWarning, match="re-tokenized") as record:
        first = rm_other.score_ids(p_ids, c_ids)
        rm_other.score_ids(p_ids, c_ids)
    assert len([w for w in record if "re-tokenized" in str(w.message)]) == 1
    assert first == pytest.approx(rm.score(PROMPTS, COMPLETIONS), abs=1e-6)


def test_too_long_prompt_is_truncated_with_one_warning(sft_dir, tokenizer):
    rm = RewardModel(init_reward_model(sft_dir, pad_token_id=2), tokenizer, max_length=5)
    with pytest.warns(UserWarning, match="truncated from the left"):
        long_score = rm.score(["the cat " * 10], ["is good"])
    assert long_score == pytest.approx(rm.score(["the cat"], ["is good"]), abs=1e-6)

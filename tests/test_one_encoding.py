"""One encoding of (prompt, completion): what a reward model trains on is what it scores in the env.

The policy is the chat Llama stand-in: its tokenizer adds ``<s>`` to every encoding and has a
chat template whose text already starts with ``<s>``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_models import save_bert_reward_model, save_gpt2_reward_model
from rlhf_gym.envs import TextGenerationVecEnv
from rlhf_gym.lm.encoding import encode_completion, encode_prompt, encode_prompts
from rlhf_gym.lm.sampling import sample_batch
from rlhf_gym.reward_models import PreferencePair, RewardModel, init_reward_model
from rlhf_gym.reward_models.encoding import encode_pairs
from transformers import AutoModelForCausalLM, AutoTokenizer

CHOSEN, REJECTED = "the cat is very nice", "it was bad"


def chat_prompt(tokenizer, text: str = "tell me about the cat") -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )


def test_prompt_gets_bos_once_and_completion_none(chat_tokenizer):
    tok = chat_tokenizer
    bos, words = tok.bos_token_id, tok.convert_tokens_to_ids(["the", "cat"])
    assert encode_prompt(tok, "the cat") == [bos, *words]
    templated = chat_prompt(tok)
    assert templated.startswith("<s>") and tok(templated)["input_ids"][:2] == [bos, bos]
    ids = encode_prompt(tok, templated)
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids == tok(templated, add_special_tokens=False)["input_ids"]
    assert encode_completion(tok, "the cat") == words
    assert encode_prompts(tok, ["the cat", templated]) == [[bos, *words], ids]


def test_tokenizers_without_bos_and_encoders(tmp_path):
    gpt2_tok = AutoTokenizer.from_pretrained(save_gpt2_reward_model(tmp_path / "gpt2"))
    assert encode_prompt(gpt2_tok, "the cat") == gpt2_tok("the cat")["input_ids"]
    bert_tok = AutoTokenizer.from_pretrained(save_bert_reward_model(tmp_path / "bert"))
    full = bert_tok("the cat")["input_ids"]  # [CLS] the cat [SEP]
    assert encode_prompt(bert_tok, "the cat") == full[:-1]  # no trailing [SEP]


def test_env_prompts_are_encode_prompt(chat_dir, chat_tokenizer):
    """The env's episodes start with the same ids as the sampler's and the reward model's."""
    prompts = [chat_prompt(chat_tokenizer), "the cat is"]
    env = TextGenerationVecEnv(
        2,
        tokenizer=chat_tokenizer,
        reference_model=chat_dir,
        prompts=prompts,
        kl_coef=0.0,
        max_prompt_tokens=32,
        max_new_tokens=4,
        device="cpu",
    )
    assert env.batch.prompt_ids == encode_prompts(chat_tokenizer, prompts)
    policy = AutoModelForCausalLM.from_pretrained(chat_dir).eval()
    batch = sample_batch(
        policy,
        chat_tokenizer,
        prompts,
        max_new_tokens=2,
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    for row, ids in enumerate(env.batch.prompt_ids):
        sampled = batch.sequences[row, : batch.prompt_length][
            batch.attention_mask[row, : batch.prompt_length] == 1
        ]
        assert sampled.tolist() == ids


def captured_inputs(model: torch.nn.Module) -> list[list[int]]:
    """Record the unpadded ``input_ids`` of every forward of ``model``."""
    seen: list[list[int]] = []

    def hook(_module, _args, kwargs):
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        seen.extend(row[m == 1].tolist() for row, m in zip(ids, mask, strict=True))

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def test_training_ids_equal_env_scoring_ids(chat_dir, chat_tokenizer):
    tok = chat_tokenizer
    network = init_reward_model(chat_dir, pad_token_id=tok.pad_token_id, seed=3)
    rm = RewardModel(network, tok, device="cpu")
    prompt = chat_prompt(tok)
    row = encode_pairs([PreferencePair(prompt, CHOSEN, REJECTED)], tok).rows[0]
    seen = captured_inputs(rm.model)

    env = TextGenerationVecEnv(
        1,
        tokenizer=tok,
        reference_model=chat_dir,
        prompts=[prompt],
        reward=rm,
        kl_coef=0.0,
        max_prompt_tokens=32,
        max_new_tokens=16,
        device="cpu",
    )
    env.reset()
    end = tok.convert_tokens_to_ids("<|end|>")  # the chat model's second stop id
    for action in [*encode_completion(tok, CHOSEN), end]:
        _, rewards, dones, infos = env.step(np.array([action]))
    assert dones[0] and not infos[0]["TimeLimit.truncated"]
    assert seen == [row["chosen_ids"]]
    assert (
        row["chosen_ids"][0] == tok.bos_token_id and row["chosen_ids"].count(tok.bos_token_id) == 1
    )
    assert row["chosen_ids"][-1] == tok.eos_token_id
    direct = rm.score([prompt], [CHOSEN])
    assert rewards[0] == pytest.approx(direct[0], abs=1e-5)
    assert infos[0]["score"] == pytest.approx(direct[0], abs=1e-5)
    assert seen[-1] == row["chosen_ids"]  # scoring the text saw the same ids again

"""Reward models from elsewhere: a GPT-2 classifier without our metadata and a BERT encoder.

The policy is the chat Llama stand-in, whose word ids differ from both reward models' ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hf_models import save_bert_reward_model, save_chat_llama, save_gpt2_reward_model
from rlhf_gym.envs import TextGenerationEnv
from rlhf_gym.lm.encoding import decode_content, encode_completion, encode_prompt
from rlhf_gym.lm.sampling import sample_completions
from rlhf_gym.reward_models import load_reward_model, normalise_on_policy
from rlhf_gym.reward_models.normalise import draw_prompts
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

PROMPTS = ["tell me about the cat", "why is the movie so bad", "what about this book"]
COMPLETIONS = ["the cat is very nice", "it was awful", "i love this book and it is great"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("any_rm")
    return {
        "chat": save_chat_llama(root / "chat"),
        "gpt2": save_gpt2_reward_model(root / "gpt2"),
        "bert": save_bert_reward_model(root / "bert"),
    }


@pytest.fixture(scope="module")
def chat_tok(dirs):
    return AutoTokenizer.from_pretrained(dirs["chat"])


def own_forward(path: Path, pairs: list[tuple[str, str]], encoder: bool) -> np.ndarray:
    """The plain transformers model, one unpadded pair at a time, on its own tokenization."""
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    out = []
    for prompt, completion in pairs:
        if encoder:
            inputs = tok(prompt, completion, return_tensors="pt")
        else:
            ids = [*encode_prompt(tok, prompt), *encode_completion(tok, completion)]
            inputs = {"input_ids": torch.tensor([[*ids, tok.eos_token_id]])}
        with torch.no_grad():
            out.append(model(**inputs).logits[0, 0].item())
    return np.array(out)


def test_gpt2_classifier_without_metadata_loads_with_defaults(dirs):
    rm = load_reward_model(dirs["gpt2"], device="cpu")
    assert not rm.encoder and (rm.gain, rm.bias) == (1.0, 0.0)
    assert rm.max_length == 128  # n_positions; the tokenizer sets no limit
    want = own_forward(dirs["gpt2"], list(zip(PROMPTS, COMPLETIONS, strict=True)), encoder=False)
    assert rm.score(PROMPTS, COMPLETIONS) == pytest.approx(want, abs=1e-5)


def test_bert_encoder_is_read_where_its_head_pools(dirs):
    rm = load_reward_model(dirs["bert"], device="cpu")
    assert rm.encoder and rm.max_length == 128
    scores = rm.score(PROMPTS, COMPLETIONS)  # one padded batch of different lengths
    want = own_forward(dirs["bert"], list(zip(PROMPTS, COMPLETIONS, strict=True)), encoder=True)
    assert scores == pytest.approx(want, abs=1e-5)
    model, tok = rm.model, rm.tokenizer
    last = []
    for prompt, completion in zip(PROMPTS, COMPLETIONS, strict=True):
        with torch.no_grad():
            hidden = model.bert(**tok(prompt, completion, return_tensors="pt")).last_hidden_state
            pooled = model.bert.pooler.activation(model.bert.pooler.dense(hidden[:, -1]))
            last.append(model.classifier(pooled)[0, 0].item())
    assert np.abs(scores - np.array(last)).min() > 1e-3  # the last position reads differently


def test_a_causal_lm_is_not_a_reward_model(dirs):
    with pytest.raises(ValueError, match="not a sequence classifier"):
        load_reward_model(dirs["chat"])


def run_episodes(dirs, tok, reward) -> tuple[list[float], list[dict]]:
    """Forced episodes through the env until every prompt ran; the scores and final infos."""
    env = TextGenerationEnv(
        tokenizer=tok,
        reference_model=dirs["chat"],
        prompts=PROMPTS,
        reward=reward,
        kl_coef=0.0,
        max_prompt_tokens=16,
        max_new_tokens=16,
        device="cpu",
    )
    scores, infos = [], []
    end = tok.convert_tokens_to_ids("<|end|>")
    for seed in range(40):  # until every prompt has been drawn
        if {i["prompt"] for i in infos} == set(PROMPTS):
            break
        _, start = env.reset(seed=seed)
        completion = COMPLETIONS[PROMPTS.index(start["prompt"])]
        for action in [*encode_completion(tok, completion), end]:
            _, reward_t, terminated, truncated, info = env.step(action)
        assert terminated
        scores.append(reward_t)
        infos.append(info)
    return scores, infos


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_env_scores_foreign_reward_models_on_text(dirs, chat_tok, kind):
    rm = load_reward_model(dirs[kind], device="cpu")  # no policy_tokenizer: the env passes it
    if kind == "gpt2":  # a decoder with another vocabulary: re-tokenized, said once
        with pytest.warns(UserWarning, match="re-tokenized"):
            scores, infos = run_episodes(dirs, chat_tok, rm)
    else:  # an encoder always reads text
        scores, infos = run_episodes(dirs, chat_tok, rm)
    want = rm.score([i["prompt"] for i in infos], [i["completion"] for i in infos])
    assert scores == pytest.approx(want, abs=1e-5)
    assert {i["prompt"] for i in infos} == set(PROMPTS)
    for info in infos:  # what the ids were: the policy's, not the reward model's
        assert info["prompt_ids"] == encode_prompt(chat_tok, info["prompt"])
        assert info["prompt_ids"] != encode_prompt(rm.tokenizer, info["prompt"])


def test_score_ids_without_a_tokenizer_is_an_error(dirs, chat_tok):
    rm = load_reward_model(dirs["gpt2"], device="cpu")
    ids = [encode_prompt(chat_tok, PROMPTS[0])], [encode_completion(chat_tok, COMPLETIONS[0])]
    with pytest.raises(ValueError, match="tokenizer the ids come from"):
        rm.score_ids(*ids)
    bound = load_reward_model(dirs["gpt2"], device="cpu", policy_tokenizer=chat_tok)
    with pytest.warns(UserWarning, match="re-tokenized"):
        got = bound.score_ids(*ids)
    assert got == pytest.approx(rm.score(PROMPTS[:1], COMPLETIONS[:1]), abs=1e-5)


def test_chat_prompt_keeps_role_markers_but_not_bos(dirs, chat_tok):
    rm = load_reward_model(dirs["gpt2"], device="cpu", policy_tokenizer=chat_tok)
    text = chat_tok.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, tokenize=False
    )
    ids = encode_prompt(chat_tok, text)
    content = f"<|user|> {PROMPTS[0]} <|end|> <|assistant|>"
    assert decode_content(chat_tok, [*ids, chat_tok.eos_token_id, chat_tok.pad_token_id]) == content
    with pytest.warns(UserWarning, match="re-tokenized"):
        got = rm.score_ids([ids], [[]])
    assert got == pytest.approx(rm.score([content], [""]), abs=1e-5)
    assert abs(got[0] - rm.score([f"<s> {content}"], [""])[0]) > 1e-4  # a kept BOS would count


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_normalise_a_loaded_foreign_reward_model_on_policy_samples(dirs, chat_tok, kind):
    rm = load_reward_model(dirs[kind], device="cpu")
    policy = AutoModelForCausalLM.from_pretrained(dirs["chat"]).eval()
    if kind == "bert":
        with pytest.raises(ValueError, match="policy_tokenizer"):
            normalise_on_policy(rm, policy, PROMPTS, fit_samples=4, check_samples=4)
    out = normalise_on_policy(
        rm,
        policy,
        PROMPTS,
        policy_tokenizer=chat_tok,
        fit_samples=48,
        check_samples=16,
        max_new_tokens=8,
        seed=5,
    )
    assert (rm.gain, rm.bias) == (out["gain"], out["bias"]) and rm.gain != 1.0
    fit_prompts = draw_prompts(PROMPTS, 48, 6)  # the fit set normalise_on_policy drew
    fit = sample_completions(policy, chat_tok, fit_prompts, max_new_tokens=8, seed=6)
    assert any(fit) and all("<" not in c for c in fit)  # policy words, decoded by its tokenizer
    scores = rm.score(fit_prompts, fit)
    assert abs(scores.mean()) < 1e-6 and abs(scores.std() - 1) < 1e-6


def test_encoder_long_prompt_loses_its_left_end(dirs):
    rm = load_reward_model(dirs["bert"], device="cpu", max_length=12)
    with pytest.warns(UserWarning, match="truncated from the left"):
        long = rm.score(["a " * 20 + "the cat is very"], ["good"])
    kept = "a a a a the cat is very"  # 12 = [CLS] + 8 prompt tokens + [SEP] good [SEP]
    assert long == pytest.approx(rm.score([kept], ["good"]), abs=1e-6)
    with pytest.raises(ValueError, match="completions are never truncated"):
        rm.score(["the cat"], ["good " * 12])

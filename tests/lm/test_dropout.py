from __future__ import annotations

import torch
from rlhf_gym.lm.dropout import disable_dropout
from transformers import BertConfig, EncoderDecoderConfig, GPT2Config


def test_disable_dropout_zeroes_every_rate_including_nested_configs():
    flat = GPT2Config(resid_pdrop=0.1, embd_pdrop=0.2, attn_pdrop=0.3, summary_first_dropout=0.4)
    disable_dropout(flat)
    assert (flat.resid_pdrop, flat.embd_pdrop, flat.attn_pdrop) == (0.0, 0.0, 0.0)
    assert flat.summary_first_dropout == 0.0
    bert = BertConfig(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    nested = EncoderDecoderConfig(encoder=bert.to_dict(), decoder=bert.to_dict())
    disable_dropout(nested)
    for sub in (nested.encoder, nested.decoder):
        assert sub.hidden_dropout_prob == 0.0 and sub.attention_probs_dropout_prob == 0.0
    assert flat.layer_norm_epsilon == GPT2Config().layer_norm_epsilon  # other floats untouched


def test_a_model_object_loses_the_dropout_it_was_built_with() -> None:
    from rlhf_gym.lm.loading import load_causal_lm
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=20, resid_pdrop=0.3,
                        embd_pdrop=0.3, attn_pdrop=0.3)  # fmt: skip
    model = load_causal_lm(GPT2LMHeadModel(config)).train()
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates and all(p == 0.0 for p in rates)
    ids = torch.arange(8).unsqueeze(0)
    assert torch.equal(model(ids).logits, model(ids).logits)  # train mode, yet deterministic

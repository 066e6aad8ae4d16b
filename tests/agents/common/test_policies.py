from __future__ import annotations

import numpy as np
import pytest
import torch
from rlhf_gym.agents.common import LMActorCriticPolicy
from rlhf_gym.agents.ppo import LMPPO
from stable_baselines3.common.env_util import make_vec_env


def lora_agent(lm_factory, env_factory, base_dir=None, **kwargs) -> LMPPO:
    """A LoRA agent on a tiny GPT-2; with ``base_dir`` the base model is loaded from a folder."""
    lm = lm_factory("gpt2")
    model = lm
    if base_dir is not None:
        lm.save_pretrained(base_dir)
        model = str(base_dir)
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"]}
    return LMPPO(
        "LMPolicy",
        env_factory(lm),
        n_steps=6,
        batch_size=4,
        seed=0,
        device="cpu",
        learning_rate=1e-2,
        policy_kwargs={"model": model, "lora": lora},
        **kwargs,
    )


def test_ids_stay_long_and_dropout_stays_off(agent_factory) -> None:
    agent = agent_factory()
    policy = agent.policy
    obs, _ = policy.obs_to_tensor(agent.env.reset())
    ids, mask = policy.extract_features(obs)
    assert ids.dtype == torch.long and mask.dtype == torch.long
    policy.set_training_mode(True)
    assert not any(m.training for m in policy.modules())
    first, second = policy._last_step(obs)[0], policy._last_step(obs)[0]
    assert torch.equal(first, second)


def test_temperature_divides_logits(agent_factory) -> None:
    hot = agent_factory(env_kwargs={"temperature": 2.0})
    cold = agent_factory()
    assert hot.policy.temperature == 2.0  # taken from the env
    obs, _ = cold.policy.obs_to_tensor(cold.env.reset())
    torch.testing.assert_close(hot.policy._last_step(obs)[0] * 2, cold.policy._last_step(obs)[0])


def test_action_space_must_match_policy_vocab(lm_factory, env_factory) -> None:
    env = env_factory(lm_factory("gpt2", vocab_size=30))
    with pytest.raises(ValueError, match="policy and reference vocabularies differ"):
        LMPPO("LMPolicy", env, policy_kwargs={"model": lm_factory("gpt2")}, device="cpu")


def test_env_must_be_the_token_env(lm_factory) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2)
    with pytest.raises(ValueError, match="observation must be a Dict"):
        LMPPO("LMPolicy", env, policy_kwargs={"model": lm_factory("gpt2")}, device="cpu")


def test_temperature_mismatch_is_refused(lm_factory, env_factory) -> None:
    lm = lm_factory("gpt2")
    with pytest.raises(ValueError, match="temperature"):
        LMPPO(
            "LMPolicy",
            env_factory(lm),
            device="cpu",
            policy_kwargs={"model": lm, "temperature": 0.7},
        )


def test_lora_trains_adapters_and_reference_is_base(lm_factory, env_factory) -> None:
    agent = lora_agent(lm_factory, env_factory)
    policy: LMActorCriticPolicy = agent.policy
    assert policy.has_lora
    base = {n: p.detach().clone() for n, p in policy.model.named_parameters() if "lora" not in n}
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.no_grad():
        original = lm_factory("gpt2")(input_ids=ids).logits  # the model before LoRA
    agent.learn(agent.n_steps * agent.n_envs)
    for name, param in policy.model.named_parameters():
        if name in base:
            assert torch.equal(param, base[name]), name
    torch.testing.assert_close(policy.reference_view()(input_ids=ids).logits, original)
    with torch.no_grad():
        trained = policy.model(input_ids=ids).logits
    assert not torch.allclose(trained, original)


def test_lora_reference_view_serves_as_env_reference(lm_factory, env_factory) -> None:
    agent = lora_agent(lm_factory, env_factory)
    policy: LMActorCriticPolicy = agent.policy
    view = policy.reference_view()
    env = env_factory(lm_factory("gpt2"), reference=view)  # the env freezes its reference
    agent.set_env(env)
    agent.learn(agent.n_steps * agent.n_envs)  # adapters start at zero: policy == reference
    assert agent.last_metrics["objective/kl"] == pytest.approx(0.0, abs=1e-5)
    assert any(p.requires_grad for p in policy.model.parameters())  # adapters still train
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad(), policy.model.disable_adapter():
        base = policy.model(input_ids=ids).logits
    torch.testing.assert_close(view(input_ids=ids).logits, base)
    agent.learn(agent.n_steps * agent.n_envs, reset_num_timesteps=False)
    assert agent.last_metrics["objective/kl"] > 1e-4  # the trained policy left the reference


def test_lora_checkpoint_round_trip(lm_factory, env_factory, tmp_path) -> None:
    agent = lora_agent(lm_factory, env_factory, base_dir=tmp_path / "base")
    env = agent.get_env()
    agent.learn(agent.n_steps * agent.n_envs)
    agent.save(tmp_path / "ckpt")
    loaded = LMPPO.load(tmp_path / "ckpt", env=env, device="cpu")
    assert loaded.policy.has_lora
    for a, b in zip(agent.policy.parameters(), loaded.policy.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_critic_from_reward_model_dir(lm_factory, env_factory, tokenizer_factory, tmp_path):
    from rlhf_gym.reward_models import RewardModel, init_reward_model

    lm = lm_factory("llama")
    lm.save_pretrained(tmp_path / "sft")
    network = init_reward_model(tmp_path / "sft", pad_token_id=0, seed=1)
    RewardModel(network, tokenizer_factory(), device="cpu").save_pretrained(tmp_path / "rm")
    env = env_factory(lm)
    agent = LMPPO(
        "LMPolicy",
        env,
        n_steps=6,
        batch_size=4,
        seed=0,
        device="cpu",
        policy_kwargs={"model": lm, "critic": str(tmp_path / "rm")},
    )
    policy = agent.policy
    assert policy.critic_trunk is not None
    head = [m for m in network.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    torch.testing.assert_close(policy.value_head.weight, head[0].weight)
    agent.learn(agent.n_steps * agent.n_envs)
    assert np.isfinite(agent.last_metrics["loss/value"])
    agent.save(tmp_path / "ckpt")
    loaded = LMPPO.load(tmp_path / "ckpt", env=env, device="cpu")
    for a, b in zip(policy.parameters(), loaded.policy.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_bidirectional_critic_is_refused(lm_factory, env_factory, tmp_path) -> None:
    from hf_models import save_bert_reward_model

    lm = lm_factory("gpt2")
    critic = save_bert_reward_model(tmp_path / "bert_rm")
    with pytest.raises(ValueError, match=r"critic must be a causal \(decoder\) model.*critic=None"):
        LMPPO(
            "LMPolicy",
            env_factory(lm),
            device="cpu",
            policy_kwargs={"model": lm, "critic": str(critic)},
        )

"""Loading the models a policy is made of: the LM, and a critic from a reward model directory.

A critic must be causal: its values are read teacher-forced once per sequence after a rollout.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import torch
from gymnasium import spaces
from rlhf_gym.agents.common.lora import apply_lora, has_adapters
from rlhf_gym.lm.dropout import disable_dropout
from rlhf_gym.lm.loading import load_causal_lm, torch_dtype
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel

VALUE_HEAD_FILE = "value_head.safetensors"
CRITIC_DIR = "critic"


def check_token_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a clear error unless the spaces are the token env's Dict of ids and Discrete(V)."""
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"the action must be one token, Discrete(V); got {action_space}.")
    keys = {"input_ids", "attention_mask"}
    if not isinstance(observation_space, spaces.Dict) or not keys <= set(observation_space.spaces):
        raise ValueError(
            f"the observation must be a Dict with {sorted(keys)} (TextGenerationVecEnv); "
            f"got {observation_space}."
        )


class CriticTrunk(nn.Module):
    """A reward model's ``AutoModel`` trunk dressed as an LM for :class:`CachedCausalLM`.

    Its output carries the last hidden state (as ``hidden_states[-1]``) and the cache; the
    ``logits`` field is a one-wide placeholder, so no vocabulary projection is computed.
    """

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.config = trunk.config

    def forward(self, **kwargs: Any) -> SimpleNamespace:
        """Run the trunk; ``output_hidden_states`` is implied."""
        kwargs.pop("output_hidden_states", None)
        out = self.trunk(**kwargs)
        last = out.last_hidden_state
        return SimpleNamespace(logits=last[..., :1], hidden_states=(last,), cache=out.get("cache"))


def load_policy_lm(
    model: Any, lora: Any, model_kwargs: dict[str, Any], dtype: str | None
) -> nn.Module:
    """The LM that acts: float32 for full fine-tuning; a frozen base plus adapters for LoRA.

    Args:
        model: hub name, directory or model object of the policy LM.
        lora: None, LoRA settings or saved adapters (:func:`apply_lora`), or a peft model
            already built on ``model``'s weights (returned as is).
        model_kwargs: extra ``from_pretrained`` arguments.
        dtype: the dtype name a LoRA base loads in (None: as stored).
    """
    if lora is not None and has_adapters(lora):
        return lora  # built by the caller on ``model``'s weights
    if lora is None:  # every weight trains: float32 whatever the checkpoint holds
        return load_causal_lm(model, **{**model_kwargs, "dtype": torch.float32})
    base = load_causal_lm(model, **{"dtype": torch_dtype(dtype), **model_kwargs})
    return apply_lora(base, lora)


def upcast_trainable(module: nn.Module) -> None:
    """Put every trained weight in float32 (adapters on a half base, a bf16 critic).

    Adam's moments take the dtype of their weight, and updates far smaller than a weight
    vanish in bf16, so nothing that trains stays in half precision.
    """
    for param in module.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def load_critic(path: str | os.PathLike) -> tuple[CriticTrunk, nn.Linear]:
    """Trunk and scalar head of a saved reward model (or of a critic saved by this policy)."""
    critic_dir = os.path.join(path, CRITIC_DIR)
    if os.path.isdir(critic_dir):  # a directory written by LMActorCriticPolicy.save_pretrained
        trunk = AutoModel.from_pretrained(critic_dir).eval()
        head = nn.Linear(trunk.config.hidden_size, 1)
        head.load_state_dict(load_file(os.path.join(path, VALUE_HEAD_FILE)))
        return check_causal(CriticTrunk(trunk), path), head
    from rlhf_gym.reward_models.reward_model import load_reward_model

    network = load_reward_model(path).model
    heads = [m for m in network.modules() if isinstance(m, nn.Linear) and m.out_features == 1]
    if len(heads) != 1:
        raise ValueError(f"{path}: expected one scalar reward head, found {len(heads)}.")
    trunk = getattr(network, "backbone", None) or network.base_model
    head = nn.Linear(heads[0].in_features, 1)
    head.weight.data.copy_(heads[0].weight.data)
    if heads[0].bias is not None:
        head.bias.data.copy_(heads[0].bias.data)
    else:
        nn.init.zeros_(head.bias)
    disable_dropout(trunk.config)
    return check_causal(CriticTrunk(trunk.eval()), path), head


def check_causal(critic: CriticTrunk, path: str | os.PathLike) -> CriticTrunk:
    """Return ``critic`` if it is causal; refuse a bidirectional trunk (a BERT reward model).

    A critic's values are read teacher-forced from whole sequences after the rollout, so the
    value of a prefix must not depend on the tokens after it. The probe: two inputs that differ
    only in their last token must agree on every earlier hidden state.

    Raises:
        ValueError: when an earlier hidden state changes with the last token.
    """
    ids = torch.tensor([[1, 2, 3], [1, 2, 4]], device=next(critic.parameters()).device)
    with torch.no_grad():
        hidden = critic(input_ids=ids, attention_mask=torch.ones_like(ids)).hidden_states[-1]
    if not torch.allclose(hidden[0, :2].float(), hidden[1, :2].float(), rtol=1e-3, atol=1e-4):
        raise ValueError(
            f"{path}: the critic must be a causal (decoder) model, but this "
            f"{type(critic.trunk).__name__} lets a token's hidden state see the tokens after it, "
            "so a teacher-forced value would see the future. Initialise the critic from a "
            "decoder reward model (e.g. init_reward_model on the SFT policy), or pass "
            "critic=None for a value head on the policy's trunk."
        )
    return critic


def save_value_model(
    path: str | os.PathLike, value_head: nn.Linear | None, critic: CriticTrunk | None
) -> None:
    """Write ``path/value_head.safetensors`` and a separate critic's trunk in ``path/critic/``."""
    if value_head is not None:
        head = {k: v.detach().cpu() for k, v in value_head.state_dict().items()}
        save_file(head, os.path.join(path, VALUE_HEAD_FILE))
    if critic is not None:
        critic.trunk.save_pretrained(os.path.join(path, CRITIC_DIR))


def load_value_head(head: nn.Linear, folder: Any) -> bool:
    """Copy ``folder/value_head.safetensors`` into ``head`` when ``folder`` is a path holding one.

    Returns:
        Whether it was loaded (in place, so an optimizer that holds the weights keeps working).
    """
    if not isinstance(folder, str | os.PathLike):
        return False
    file = os.path.join(folder, VALUE_HEAD_FILE)
    if not os.path.isfile(file):
        return False
    head.load_state_dict(load_file(file))
    return True

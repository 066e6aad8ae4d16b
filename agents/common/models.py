"""Loading the models a policy is made of: the LM, and a critic from a reward model directory."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

from gymnasium import spaces
from rlhf_gym.lm.dropout import disable_dropout
from safetensors.torch import load_file
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


def load_critic(path: str | os.PathLike) -> tuple[nn.Module, nn.Linear]:
    """Trunk and scalar head of a saved reward model (or of a critic saved by this policy)."""
    critic_dir = os.path.join(path, CRITIC_DIR)
    if os.path.isdir(critic_dir):  # a directory written by LMActorCriticPolicy.save_pretrained
        trunk = AutoModel.from_pretrained(critic_dir).eval()
        head = nn.Linear(trunk.config.hidden_size, 1)
        head.load_state_dict(load_file(os.path.join(path, VALUE_HEAD_FILE)))
        return CriticTrunk(trunk), head
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
    return CriticTrunk(trunk.eval()), head

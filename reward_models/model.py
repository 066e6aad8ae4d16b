"""The scalar reward network: a causal LM trunk with a one-output head.

Where the architecture has one, the network is ``AutoModelForSequenceClassification`` with
``num_labels=1`` (so a saved reward model loads back with plain transformers). Otherwise it is a
generic ``AutoModel`` trunk plus a linear head (:class:`LinearHeadRewardModel`). Either way the
head starts with std ``1/sqrt(d+1)`` and bias 0, every dropout probability in the config is 0,
and the reward is read at the last non-pad token (left or right padding).
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import torch
from rlhf_gym.lm.dropout import disable_dropout
from rlhf_gym.lm.positions import position_ids_from_mask
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

HeadKind = Literal["auto", "sequence_classification", "linear"]
HEAD_FILE = "reward_head.safetensors"


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last attended token per row; right or left padding alike."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.long()).argmax(dim=1)


class LinearHeadRewardModel(nn.Module):
    """A generic ``AutoModel`` trunk plus ``nn.Linear(d, 1)`` read at the last real token."""

    def __init__(self, backbone: nn.Module, head: nn.Linear | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = backbone.config
        self.score = head or nn.Linear(self.config.hidden_size, 1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> SequenceClassifierOutput:
        """Return logits of shape ``(batch, 1)`` read at each row's last attended token."""
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, last_token_index(attention_mask)]
        return SequenceClassifierOutput(logits=self.score(pooled))

    def save_pretrained(self, path: str | os.PathLike, **kwargs: Any) -> None:
        """Save the trunk the transformers way and the head as safetensors next to it."""
        self.backbone.save_pretrained(path, **kwargs)
        save_file(
            {k: v.contiguous() for k, v in self.score.state_dict().items()},
            os.path.join(path, HEAD_FILE),
        )

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> LinearHeadRewardModel:
        """Load a trunk saved by :meth:`save_pretrained` and its head."""
        model = cls(AutoModel.from_pretrained(path, **kwargs))
        model.score.load_state_dict(load_file(os.path.join(path, HEAD_FILE)))
        return model


def init_head(model: nn.Module) -> None:
    """Re-initialise the one-output head: normal with std ``1/sqrt(d+1)``, bias 0."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == 1]
    if len(heads) != 1:
        raise ValueError(f"expected exactly one linear head with one output, found {len(heads)}.")
    head = heads[0]
    nn.init.normal_(head.weight, std=1.0 / math.sqrt(head.in_features + 1))
    if head.bias is not None:
        nn.init.zeros_(head.bias)


def init_reward_model(
    name_or_path: str | os.PathLike,
    *,
    pad_token_id: int,
    head: HeadKind = "auto",
    vocab_size: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build a fresh reward network from a causal LM checkpoint (the SFT policy by default).

    Args:
        name_or_path: anything ``from_pretrained`` accepts.
        pad_token_id: the tokenizer's pad id, written into the config (the reward is read at
            the last non-pad token).
        head: ``"auto"`` uses the architecture's sequence-classification class when it exists,
            else the generic linear head.
        vocab_size: resize the embeddings when the tokenizer has grown (e.g. a pad was added).
        seed: seeds the head initialisation.
    """
    config = AutoConfig.from_pretrained(name_or_path, num_labels=1)
    config.pad_token_id = pad_token_id
    disable_dropout(config)
    has_class = type(config) in AutoModelForSequenceClassification._model_mapping
    if head == "sequence_classification" and not has_class:
        raise ValueError(
            f"{config.model_type} has no sequence-classification class; use head='linear'."
        )
    if head == "sequence_classification" or (head == "auto" and has_class):
        model = AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config)
    else:
        model = LinearHeadRewardModel(AutoModel.from_pretrained(name_or_path, config=config))
    trunk = model.backbone if isinstance(model, LinearHeadRewardModel) else model
    if vocab_size is not None and vocab_size > trunk.get_input_embeddings().num_embeddings:
        trunk.resize_token_embeddings(vocab_size)
    torch.manual_seed(seed)
    init_head(model)
    return model


def load_reward_network(path: str | os.PathLike, head: str) -> nn.Module:
    """Load a network saved by :func:`init_reward_model`'s model ``save_pretrained``."""
    if head == "linear":
        return LinearHeadRewardModel.from_pretrained(path)
    return AutoModelForSequenceClassification.from_pretrained(path)


def reward_forward(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Raw rewards, shape ``(batch,)``, read at each row's last non-pad token."""
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
    )
    return out.logits[:, 0]

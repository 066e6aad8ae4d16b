"""The scalar reward network: a causal LM trunk with a one-output head.

Where the architecture has one, the network is ``AutoModelForSequenceClassification`` with
``num_labels=1`` (so a saved reward model loads back with plain transformers). Otherwise it is a
generic ``AutoModel`` trunk plus a linear head (:class:`LinearHeadRewardModel`). Either way the
head starts with std ``1/sqrt(d+1)`` and bias 0, every dropout probability in the config is 0,
and the reward is read at the last non-pad token (left or right padding).

Reward models trained elsewhere load too (:func:`load_reward_network`): any one-output
``AutoModelForSequenceClassification``. Decoders are read at the last non-pad token; encoders
(:func:`is_encoder`, the BERT family) where their own head pools (``[CLS]``).
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
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

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

    The network is float32 whatever the checkpoint's stored dtype (a bf16 base model would
    otherwise be trained, Adam state included, in bf16); GPU training autocasts instead.
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
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, config=config, dtype=torch.float32
        )
    else:
        model = LinearHeadRewardModel(
            AutoModel.from_pretrained(name_or_path, config=config, dtype=torch.float32)
        )
    trunk = model.backbone if isinstance(model, LinearHeadRewardModel) else model
    if vocab_size is not None and vocab_size > trunk.get_input_embeddings().num_embeddings:
        trunk.resize_token_embeddings(vocab_size)
    torch.manual_seed(seed)
    init_head(model)
    return model


def is_encoder(model_or_config: Any) -> bool:
    """Whether a reward network reads text as an encoder (BERT family) rather than a decoder.

    A decoder is a config marked ``is_decoder``, or an architecture with a causal LM and no
    masked LM (GPT-2, Llama, Mistral...). BERT and RoBERTa have both and are encoders;
    encoder-only (DeBERTa) and encoder-decoder (T5, BART) models read their own pair encoding too.
    """
    if isinstance(model_or_config, LinearHeadRewardModel):
        return False  # our own trunk-plus-head: always a causal LM read at the last token
    config = getattr(model_or_config, "config", model_or_config)
    if getattr(config, "is_decoder", False):
        return False
    kind = config.model_type
    return not (
        kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def check_reward_config(config: Any, name_or_path: str | os.PathLike) -> None:
    """Refuse a checkpoint that is not a one-output sequence classifier (no random heads).

    Raises:
        ValueError: for a plain LM or a classifier with several labels, saying what to load.
    """
    architectures = getattr(config, "architectures", None) or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(
            f"{name_or_path} holds {architectures or 'an unnamed architecture'}, not a sequence "
            "classifier, so its reward head would be random. Load a reward model (an "
            "AutoModelForSequenceClassification with num_labels=1), or train one from this "
            "model with rlhf_gym.reward_models.train_reward_model."
        )
    if config.num_labels != 1:
        raise ValueError(
            f"{name_or_path} is a classifier with {config.num_labels} labels; a reward model has "
            "one output (num_labels=1)."
        )


def load_reward_network(
    path: str | os.PathLike, head: str = "sequence_classification"
) -> nn.Module:
    """Load a reward network: ours (``head`` from our metadata) or any one-output classifier.

    Raises:
        ValueError: when ``path`` is no one-output sequence classifier (see
            :func:`check_reward_config`).
    """
    if head == "linear":
        return LinearHeadRewardModel.from_pretrained(path)
    config = AutoConfig.from_pretrained(path)
    check_reward_config(config, path)
    return AutoModelForSequenceClassification.from_pretrained(path, config=config)


def default_max_length(config: Any, tokenizer: Any, fallback: int = 512) -> int:
    """The longest sequence a model reads: its positions and its tokenizer's limit, when set."""
    limits = [
        getattr(config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    known = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]
    return min(known) if known else fallback


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

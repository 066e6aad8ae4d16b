"""The models an env holds, checked against each other and placed on one device."""

from __future__ import annotations

import os
from typing import Any

import torch
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.lm.encoding import stop_ids
from rlhf_gym.lm.loading import load_causal_lm, vocab_size_of
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def freeze(model: PreTrainedModel, device: torch.device) -> PreTrainedModel:
    """Move to ``device``, eval mode (dropout off), no gradients."""
    return model.to(device).eval().requires_grad_(False)


def is_frozen_copy(policy: torch.nn.Module, reference: torch.nn.Module) -> bool:
    """Whether ``policy`` trains nothing and holds exactly the reference's weights."""
    if any(p.requires_grad for p in policy.parameters()):
        return False
    ours, theirs = policy.state_dict(), reference.state_dict()
    return ours.keys() == theirs.keys() and all(
        ours[k].shape == theirs[k].shape and torch.equal(ours[k].cpu(), theirs[k].cpu())
        for k in ours
    )


class EnvModels:
    """Reference (frozen) and optional bound policy (used as given), on one device.

    ``stop_ids`` are the tokens that end an episode: the tokenizer's EOS plus every
    ``generation_config.eos_token_id`` of the reference and the bound policy (chat models stop
    on several, e.g. ``</s>`` and ``<|end|>``). ``eos_token_id`` is the tokenizer's EOS.

    Args:
        tokenizer: the policy's tokenizer; it needs an EOS token.
        reference: the frozen reference model π_ref, or its hub name or folder; moved to
            ``device``.
        policy: a policy model (or name or folder) the env scores actions with; never moved or
            frozen (it is the agent's), so it must not be the reference object, nor a frozen
            copy of it (every action would then cost a KL of exactly 0).
        device: ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda:0"``, ...
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        reference: Any,
        policy: Any,
        device: str | torch.device,
    ) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos_token_id; episodes end on EOS, so set one.")
        if policy is not None and policy is reference:
            raise ValueError(
                "reference_model and policy_model are the same object; the reference is frozen, "
                "so pass a separate copy (copy.deepcopy(policy)) as reference_model."
            )
        self.device = resolve_device(device)
        reference = load_causal_lm(reference)
        if isinstance(policy, str | os.PathLike):
            policy = load_causal_lm(policy)
        self.vocab_size = vocab_size_of(reference)
        if policy is not None:
            self.check_vocab(policy, "policy_model")
            if is_frozen_copy(policy, reference):
                raise ValueError(
                    "policy_model is a frozen copy of reference_model, so the env would price "
                    "every action at a KL of 0 whatever actually chose it. Bind the policy that "
                    "acts (trainable), hand its log-probs over with set_policy_logprob(s), or use "
                    "kl_reward='ref_logprob' with no policy_model."
                )
        if len(tokenizer) > self.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens but the model only {self.vocab_size} "
                "logits; use the tokenizer the model was trained with."
            )
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.stop_ids = list(
            dict.fromkeys([*stop_ids(tokenizer, reference), *stop_ids(tokenizer, policy)])
        )
        pad = tokenizer.pad_token_id
        self.pad_token_id = self.eos_token_id if pad is None else int(pad)
        self.reference = freeze(reference, self.device)
        self.policy = policy

    def check_vocab(self, model: torch.nn.Module, name: str) -> None:
        """Raise unless ``model`` has as many logits as the reference."""
        if vocab_size_of(model) != self.vocab_size:
            raise ValueError(
                f"{name} has {vocab_size_of(model)} logits but reference_model has "
                f"{self.vocab_size}; all models must share the policy's vocabulary."
            )

"""The models an env holds, checked against each other and placed on one device."""

from __future__ import annotations

import torch
from rlhf_gym.lm.device import resolve_device
from rlhf_gym.lm.loading import vocab_size_of
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def freeze(model: PreTrainedModel, device: torch.device) -> PreTrainedModel:
    """Move to ``device``, eval mode (dropout off), no gradients."""
    return model.to(device).eval().requires_grad_(False)


class EnvModels:
    """Reference (frozen), optional bound policy (used as given) and optional mask model (frozen).

    Args:
        tokenizer: the policy's tokenizer; it needs an EOS token.
        reference: the frozen reference model π_ref; moved to ``device``.
        policy: a policy model the env may score actions with; never moved or frozen (it is the
            agent's), so it must not be the reference object itself.
        mask: a frozen model whose top-p set defines the action masks (NLPO).
        device: ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda:0"``, ...
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        reference: PreTrainedModel,
        policy: PreTrainedModel | None,
        mask: PreTrainedModel | None,
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
        self.vocab_size = vocab_size_of(reference)
        for name, model in (("policy_model", policy), ("mask_model", mask)):
            if model is not None and vocab_size_of(model) != self.vocab_size:
                raise ValueError(
                    f"{name} has {vocab_size_of(model)} logits but reference_model has "
                    f"{self.vocab_size}; all models must share the policy's vocabulary."
                )
        if len(tokenizer) > self.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens but the model only {self.vocab_size} "
                "logits; use the tokenizer the model was trained with."
            )
        self.eos_token_id = int(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id
        self.pad_token_id = self.eos_token_id if pad is None else int(pad)
        self.reference = freeze(reference, self.device)
        self.policy = policy
        self.mask = None if mask is None else freeze(mask, self.device)

    def runners(self) -> dict[str, PreTrainedModel]:
        """The models that follow every row's tokens, by runner name."""
        named = {"ref": self.reference, "policy": self.policy, "mask": self.mask}
        return {name: model for name, model in named.items() if model is not None}

"""DPO (Rafailov et al. 2023): the policy trained on preference pairs directly, no reward model.

The loss is in :mod:`~rlhf_gym.agents.dpo.loss`, the token layout and the reference's
precomputed log-probs in :mod:`~rlhf_gym.agents.dpo.data`, the ``transformers.Trainer`` subclass
in :mod:`~rlhf_gym.agents.dpo.trainer` and the one-call entry point in
:mod:`~rlhf_gym.agents.dpo.train` (docs/dpo.md).
"""

from rlhf_gym.agents.dpo.config import DPOConfig
from rlhf_gym.agents.dpo.data import DPOCollator, add_reference_logprobs, encode_dpo_pairs
from rlhf_gym.agents.dpo.logprobs import sequence_logprobs
from rlhf_gym.agents.dpo.loss import dpo_loss, implicit_reward_metrics
from rlhf_gym.agents.dpo.train import TrainedDPO, train_dpo
from rlhf_gym.agents.dpo.trainer import DPOTrainer

__all__ = [
    "DPOCollator",
    "DPOConfig",
    "DPOTrainer",
    "TrainedDPO",
    "add_reference_logprobs",
    "dpo_loss",
    "encode_dpo_pairs",
    "implicit_reward_metrics",
    "sequence_logprobs",
    "train_dpo",
]

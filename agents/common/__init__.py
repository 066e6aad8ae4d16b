"""What every on-policy agent for language-model policies shares, the sb3-contrib way.

The on-policy base (:class:`LMOnPolicyAlgorithm`: setup, rollouts, the guarded gradient step,
the KL controller and the bookkeeping after each update), the policy (an LM with a value head),
its per-env KV-cache state, the sequence rollout buffer, the KL controllers, LoRA, checkpoints
and the env hooks live here; each algorithm folder (``agents/ppo/``) holds only its algorithm
class and loss.
"""

from rlhf_gym.agents.common.buffers import LMRolloutBuffer, LMRolloutBufferSamples
from rlhf_gym.agents.common.kl_controller import AdaptiveKLController, FixedKLController
from rlhf_gym.agents.common.on_policy import LMOnPolicyAlgorithm, NonFiniteLossError
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.agents.common.token_state import TokenCacheState, TokenStep

__all__ = [
    "AdaptiveKLController",
    "FixedKLController",
    "LMActorCriticPolicy",
    "LMOnPolicyAlgorithm",
    "LMRolloutBuffer",
    "LMRolloutBufferSamples",
    "NonFiniteLossError",
    "TokenCacheState",
    "TokenStep",
]

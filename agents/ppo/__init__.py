"""PPO for language-model policies, extending stable-baselines3 the sb3-contrib way."""

from rlhf_gym.agents.common.buffers import LMRolloutBuffer, LMRolloutBufferSamples
from rlhf_gym.agents.common.kl_controller import AdaptiveKLController, FixedKLController
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.agents.common.token_state import TokenCacheState
from rlhf_gym.agents.ppo.losses import NonFiniteLossError, ppo_losses
from rlhf_gym.agents.ppo.ppo import LMPPO

__all__ = [
    "LMPPO",
    "AdaptiveKLController",
    "FixedKLController",
    "LMActorCriticPolicy",
    "LMRolloutBuffer",
    "LMRolloutBufferSamples",
    "NonFiniteLossError",
    "TokenCacheState",
    "ppo_losses",
]

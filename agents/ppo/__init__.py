"""PPO for language-model policies, extending stable-baselines3 the sb3-contrib way."""

from rlhf_gym.agents.ppo.buffers import LMRolloutBuffer, LMRolloutBufferSamples
from rlhf_gym.agents.ppo.kl_controller import AdaptiveKLController, FixedKLController
from rlhf_gym.agents.ppo.losses import NonFiniteLossError, ppo_losses
from rlhf_gym.agents.ppo.policies import LMActorCriticPolicy
from rlhf_gym.agents.ppo.ppo import LMPPO
from rlhf_gym.agents.ppo.token_state import TokenCacheState

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

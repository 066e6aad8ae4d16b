"""PPO for language-model policies: the algorithm and its loss (the rest is in ``common``)."""

from rlhf_gym.agents.ppo.losses import ppo_losses
from rlhf_gym.agents.ppo.ppo import LMPPO

__all__ = ["LMPPO", "ppo_losses"]

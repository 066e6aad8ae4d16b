"""rlhf-gym: RLHF as software RL people already know how to use.

A token-level Gymnasium environment, Bradley-Terry reward models and an SB3-style PPO agent for
language-model policies, with an offline toy world whose gold "human" preference is known, so
reward hacking can be measured instead of guessed.

Importing the package registers the env ids (``rlhf_gym/TextGeneration-v0``,
``rlhf_gym/ToyTextGeneration-v0``) without importing torch.
"""

from rlhf_gym.registration import register_envs

__version__ = "0.1.0"

register_envs()

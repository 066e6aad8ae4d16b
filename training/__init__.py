"""Training jobs from a config: the pieces that ``train-ppo`` and ``demo`` compose.

:mod:`~rlhf_gym.training.config` holds the PPO job's settings, :mod:`~rlhf_gym.training.sources`
resolves the models, prompts and reward they name (the toy world fills what is left out),
:mod:`~rlhf_gym.training.builders` builds the env, the agent and the held-out evaluation, and
:mod:`~rlhf_gym.training.loop` runs the iterations and writes the curves.
"""

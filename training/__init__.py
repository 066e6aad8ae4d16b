"""Training jobs from a config: the pieces that ``train-ppo`` and ``demo`` compose.

:mod:`~rlhf_gym.training.config` holds the PPO job's settings, :mod:`~rlhf_gym.training.sources`
resolves the models, prompts and reward they name (the toy world when nothing real is named,
else nothing from it), :mod:`~rlhf_gym.training.builders` builds the models, the env, the agent
and the held-out evaluation, :mod:`~rlhf_gym.training.loop` runs the iterations and writes the
curves, and :mod:`~rlhf_gym.training.outputs` saves the final policy so that it loads with plain
transformers and finds it again in a run's output folder.
"""

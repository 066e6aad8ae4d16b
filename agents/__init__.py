"""Agents for language-model policies on the token env, extending stable-baselines3.

``common/`` holds what every on-policy LM agent shares (policy, KV-cache state, buffer, KL
controller, checkpoints, the :class:`~rlhf_gym.agents.common.LMOnPolicyAlgorithm` base);
each algorithm has its own folder (``ppo/``: :class:`~rlhf_gym.agents.ppo.LMPPO`).
"""

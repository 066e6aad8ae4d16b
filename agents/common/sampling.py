"""Sample whole episodes from an LM policy on a text env, without touching training state."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.envs.episodes import EpisodeTracker
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv


@torch.no_grad()
def sample_episodes(
    policy: LMActorCriticPolicy, env: VecEnv, seed: int = 0
) -> list[dict[str, Any]]:
    """Run one episode per env row of ``env`` (the first each row finishes); one dict each.

    Taking each row's first episode (not the first N to finish) keeps long completions from
    being under-counted.

    Uses its own seeded generator (the policy's training generator is left as it was), the KV
    cache path (one cached forward per step) and the log-prob handover, so each episode's
    ``kl``, ``score`` and ``completion`` are exactly what training would see. The env is reset
    first; its episodes are independent of any training env.

    Returns:
        Dicts with ``prompt``, ``completion``, ``score``, ``kl``, ``entropy``, ``length`` and
        ``rlhf_reward`` (the episode's return).
    """
    saved = policy.generator
    policy.generator = torch.Generator(policy.device).manual_seed(seed)
    env.seed(seed)
    try:
        obs = env.reset()
        state = policy.initial_state(env.num_envs)
        tracker = EpisodeTracker(env.num_envs)
        starts = np.ones(env.num_envs, dtype=bool)
        first: dict[int, dict[str, Any]] = {}
        while len(first) < env.num_envs:
            actions, _, log_probs, entropy = policy.act(
                state, obs_as_tensor(obs, policy.device), starts
            )
            env.set_policy_logprobs(log_probs.cpu().numpy())
            obs, rewards, starts, infos = env.step(actions.cpu().numpy())
            tracker.step(rewards, starts, infos, entropy.cpu().numpy())
            for episode in tracker.finished:
                first.setdefault(episode["env"], episode)
    finally:
        policy.generator = saved
    return [first[row] for row in sorted(first)]

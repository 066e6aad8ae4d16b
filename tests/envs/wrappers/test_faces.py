"""Each wrapper, on each of the three faces, pays what the equivalent constructor argument pays.

200 steps of random actions (EOS likely, so episodes end at staggered times) on a wrapped env
and on an env built with the same term as an argument; rewards agree to 1e-6, and the reward
identity (Σ r = score − β·Σ kl) holds through a stack of all the wrappers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from env_helpers import positive_word_reward, tiny_gpt2
from rlhf_gym.envs import (
    KLTerm,
    LengthPenalty,
    ScoreTerm,
    TextGenerationEnv,
    TextGenerationVecEnv,
    TextGenerationVectorEnv,
)
from rlhf_gym.envs import wrappers as w
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

N, STEPS = 3, 200


def length_reward(prompts, completions):
    return np.array([0.1 * len(c.split()) for c in completions])


# kind -> (base overrides, wrap(env, models), constructor overrides(models))
CASES: dict[str, tuple[dict, Callable, Callable]] = {
    "score_replace": (
        {"reward": None},
        lambda env, face, m: getattr(w, f"RewardScore{face}")(env, length_reward),
        lambda m: {"reward": length_reward},
    ),
    "score_add": (
        {},
        lambda env, face, m: getattr(w, f"RewardScore{face}")(env, length_reward, "add"),
        lambda m: {"terms": [ScoreTerm(length_reward, "added_score")]},
    ),
    "kl_penalty": (
        {},
        lambda env, face, m: getattr(w, f"KLPenalty{face}")(env, m["ref2"], 0.3, "k3"),
        lambda m: {"terms": [KLTerm(m["ref2"], 0.3, "k3")]},
    ),
    "length_penalty": (
        {},
        lambda env, face, m: getattr(w, f"LengthPenalty{face}")(env, 0.2, "divide"),
        lambda m: {"terms": [LengthPenalty(0.2, "divide")]},
    ),
    "top_p_mask": (
        {},
        lambda env, face, m: getattr(w, f"TopPMask{face}")(env, m["mask"], 0.5),
        lambda m: {"mask_model": m["mask"], "mask_top_p": 0.5},
    ),
}
FACES = {"Wrapper": TextGenerationEnv, "VectorWrapper": TextGenerationVectorEnv,
         "VecEnvWrapper": TextGenerationVecEnv}


def rollout(env, face: str, seed: int = 0) -> tuple[list[float], list[np.ndarray]]:
    """Rewards and action masks of STEPS random steps (EOS at 30%, so ends are staggered)."""
    rng = np.random.default_rng(seed)
    core = env.unwrapped.batch
    n = 1 if face == "Wrapper" else N
    rewards, masks = [], []
    if face == "Wrapper" or face == "VectorWrapper":
        env.reset(seed=seed)
    else:
        env.seed(seed)
        env.reset()
    for _ in range(STEPS):
        actions = np.where(rng.random(n) < 0.3, core.eos_token_id, rng.integers(3, 20, n))
        masks.append(core.action_masks().copy())
        if face == "Wrapper":
            _, r, term, trunc, _ = env.step(int(actions[0]))
            rewards.append(r)
            if term or trunc:
                env.reset()
        elif face == "VectorWrapper":
            rewards.extend(env.step(actions)[1])
        else:
            rewards.extend(env.step(actions)[1])
    return rewards, masks


@pytest.mark.parametrize("face", list(FACES))
@pytest.mark.parametrize("kind", list(CASES))
def test_wrapper_equals_constructor_argument(tokenizer, env_kwargs, face: str, kind: str) -> None:
    models = {"ref2": tiny_gpt2(len(tokenizer), seed=5), "mask": tiny_gpt2(len(tokenizer), 9)}
    base_overrides, wrap, as_argument = CASES[kind]
    make = FACES[face]
    n = {} if face == "Wrapper" else {"num_envs": N}
    base = {**env_kwargs, "missing_eos_penalty": -0.5}
    wrapped = wrap(make(**n, **{**base, **base_overrides}), face, models)
    built = make(**n, **{**base, **as_argument(models)})
    got, got_masks = rollout(wrapped, face)
    want, want_masks = rollout(built, face)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert all(np.array_equal(a, b) for a, b in zip(got_masks, want_masks, strict=True))
    if kind == "top_p_mask":
        assert not got_masks[0].all(), "the mask should narrow the action set"
    else:
        assert not np.allclose(got, rollout(make(**n, **base), face)[0]), (
            "the term should change the rewards"
        )


def test_reward_identity_through_a_stack_of_every_wrapper(tokenizer, env_kwargs) -> None:
    """Σ r = score − β·Σ kl_t − Σ extra terms, episode by episode, through all wrappers + SB3's."""
    models = {"ref2": tiny_gpt2(len(tokenizer), seed=5), "mask": tiny_gpt2(len(tokenizer), 9)}
    env = TextGenerationVecEnv(N, **{**env_kwargs, "missing_eos_penalty": -0.5, "reward": None})
    env = w.RewardScoreVecEnvWrapper(env, positive_word_reward)
    env = w.KLPenaltyVecEnvWrapper(env, models["ref2"], 0.3)
    env = w.LengthPenaltyVecEnvWrapper(env, 0.05)
    env = w.TopPMaskVecEnvWrapper(env, models["mask"], 0.9)
    env = VecNormalize(VecMonitor(env), norm_obs=False, norm_reward=False)
    env.seed(1)
    env.reset()
    rng = np.random.default_rng(1)
    sums, kls, ended = np.zeros(N), np.zeros(N), 0
    for _ in range(STEPS):
        masks = env.env_method("action_masks")
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        _, rewards, dones, infos = env.step(actions)
        sums += rewards
        kls += [0.1 * i["kl"] + 0.3 * i["extra_kl"] for i in infos]
        for row in np.flatnonzero(dones):
            info = infos[row]
            assert sums[row] == pytest.approx(info["score"] - kls[row], abs=1e-5)
            assert info["length_penalty"] == pytest.approx(-0.05 * len(info["completion_ids"]))
            sums[row] = kls[row] = 0.0
            ended += 1
    assert ended > 20

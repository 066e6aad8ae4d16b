"""The toy-world env: ``gymnasium.make("rlhf_gym/ToyTextGeneration-v0")`` needs no arguments.

It loads (or builds, once, into the cache) the toy world's artifacts: the word-level tokenizer
and the tiny GPT-2 SFT model, the reference. The terminal score is the toy world's gold utility
unless ``reward=`` (e.g. a trained reward model) is passed.

**The KL part for actors the env cannot see.** With no arguments the env runs with
``kl_reward="ref_logprob"``: each step pays ``β·log π_ref(a_t|s_t)`` and the entropy half of
the KL-regularised objective is left to the learner's entropy bonus (SB3: ``ent_coef=β``), so
any RL library optimises the right objective without handing log-probs over
(docs/objective.md). Pass ``kl_reward="kl"`` with a bound ``policy_model`` or a log-prob
handover for the exact per-token KL.
"""

from __future__ import annotations

from typing import Any

from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.envs.vector import TextGenerationVectorEnv
from rlhf_gym.lm.loading import load_causal_lm, load_tokenizer
from rlhf_gym.toy.defaults import toy_defaults

#: Toy prompts are short: "review of the <item> :" is at most 8 tokens.
TOY_MAX_PROMPT_TOKENS = 8


def toy_env_kwargs(
    *,
    out_dir: str | None = None,
    world_seed: int = 0,
    bind_policy: bool = False,
    build_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Constructor arguments of a toy-world env, building the artifacts if needed.

    Args:
        out_dir: where the toy artifacts live (default: the toy world's cache).
        world_seed: the toy world's seed (``build_toy_world(seed=...)``).
        bind_policy: bind a trainable copy of the SFT model as ``policy_model`` and price the KL
            exactly (``kl_reward="kl"``) with its log-probs; for a caller that trains that very
            model. Ignored when ``policy_model`` is given.
        build_kwargs: more ``build_toy_world`` arguments (``num_pairs``, ``sft_config``).
        **overrides: any :class:`~rlhf_gym.envs.TextGenerationEnv` argument.
    """
    toy = toy_defaults(out_dir, world_seed=world_seed, **(build_kwargs or {}))
    kwargs: dict[str, Any] = {
        "max_prompt_tokens": TOY_MAX_PROMPT_TOKENS,
        "max_new_tokens": toy.artifacts.sft_config.max_new_tokens,  # the SFT's sampling limit
        "tokenizer": load_tokenizer(toy.tokenizer),
        "reference_model": load_causal_lm(toy.policy),
        "prompts": toy.train_prompts,
        "reward": toy.gold,
        "kl_reward": "ref_logprob",
    }
    if bind_policy and "policy_model" not in overrides:
        kwargs.update(policy_model=load_causal_lm(toy.policy).requires_grad_(True), kl_reward="kl")
    kwargs.update({k: v for k, v in overrides.items() if not (k == "reward" and v is None)})
    return kwargs


def make_toy_env(**kwargs: Any) -> TextGenerationEnv:
    """``rlhf_gym/ToyTextGeneration-v0``: a single toy-world env (see :func:`toy_env_kwargs`)."""
    render_mode = kwargs.pop("render_mode", None)
    return TextGenerationEnv(render_mode=render_mode, **toy_env_kwargs(**kwargs))


def make_toy_vector_env(num_envs: int = 1, **kwargs: Any) -> TextGenerationVectorEnv:
    """The natively batched toy-world env, for ``gymnasium.make_vec``."""
    render_mode = kwargs.pop("render_mode", None)
    return TextGenerationVectorEnv(num_envs, render_mode=render_mode, **toy_env_kwargs(**kwargs))

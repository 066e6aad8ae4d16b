"""A LoRA policy's act and the env's reference pricing as one forward over 2N rows.

With LoRA the env's reference is usually a :class:`~rlhf_gym.agents.common.lora.ReferenceView`
of the policy's own peft model: the same frozen base weights with the adapters off. A rollout
step would run those weights twice, once for the act and once for the env's reference. PEFT runs
batches whose rows use different adapters at inference (``adapter_names``, ``"__base__"`` for
the base weights), so the rollout state stacks each env twice, rows 0..N-1 with the adapter and
N..2N-1 without, fed the same tokens (resets and retirements too): one forward gives the
policy's logits and values and the reference's log-probs of the sampled actions. The env then
runs no reference forward: it is switched to take them from the agent (``hand_over_reference``),
and the rollout hands them over before each step (``set_reference_logprobs``), as it does the
policy's.

The fused forward applies only when the env's reference is a view of the policy's own model and
that model has one active plain LoRA adapter (PEFT's mixed batches refuse DoRA and merged
adapters); otherwise nothing changes.
"""

from __future__ import annotations

from rlhf_gym.agents.common.env_api import env_call
from rlhf_gym.agents.common.lora import ReferenceView
from rlhf_gym.agents.common.policies import LMActorCriticPolicy
from rlhf_gym.agents.common.token_state import TokenCacheState
from rlhf_gym.lm.runner import CachedCausalLM
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

#: PEFT's adapter name for a row that runs the base weights.
BASE = "__base__"


def mixed_batch_adapter(model: nn.Module) -> str | None:
    """The name of ``model``'s one active LoRA adapter if PEFT can mix it with the base, else None.

    PEFT's mixed batches need plain LoRA, unmerged and without DoRA, in eval mode (the policy
    keeps its model there).
    """
    active = list(getattr(model, "active_adapters", []))
    if len(active) != 1:
        return None
    config = model.peft_config[active[0]]
    if config.peft_type != "LORA" or getattr(config, "use_dora", False):
        return None
    merged = any(getattr(module, "merged_adapters", None) for module in model.modules())
    return None if merged else active[0]


def shares_reference(policy: LMActorCriticPolicy, env: VecEnv) -> bool:
    """Whether ``env``'s reference is a view of ``policy``'s own LoRA model that its act can run."""
    reference = getattr(env, "reference_model", None)  # through any VecEnvWrapper
    return (
        policy.has_lora
        and isinstance(reference, ReferenceView)
        and reference.peft_model is policy.model
        and mixed_batch_adapter(policy.model) is not None
    )


def fuse_reference_forward(policy: LMActorCriticPolicy, env: VecEnv) -> bool:
    """At setup: let the policy's act price the env's reference when it can (see the module).

    Switches the env's reference handover on when :func:`shares_reference`, and off again when
    an env handed over to an earlier agent now meets a policy that cannot price its reference.

    Returns:
        Whether rollouts of ``policy`` in ``env`` run the fused forward.
    """
    fused = shares_reference(policy, env)
    if fused or getattr(env, "reference_handed_over", False):
        env_call(env, "hand_over_reference", fused)
    return fused


def rollout_state(policy: LMActorCriticPolicy, env: VecEnv) -> TokenCacheState:
    """The policy's state for a rollout in ``env``: with the reference rows when the env wants them.

    Raises:
        ValueError: when the env takes its reference log-probs from the agent but its reference
            is not a view of this policy's LoRA model.
    """
    if not getattr(env, "reference_handed_over", False):
        return policy.initial_state(env.num_envs)
    if not shares_reference(policy, env):
        raise ValueError(
            "the env takes its reference log-probs from the agent (hand_over_reference(True)), "
            "but its reference is not a ReferenceView of this policy's LoRA model; call "
            "env.hand_over_reference(False), or give the env policy.reference_view()."
        )
    return state_with_reference(policy, env.num_envs)


def state_with_reference(policy: LMActorCriticPolicy, num_envs: int) -> TokenCacheState:
    """A fresh state over 2N rows: each env with the policy's adapter, then with the base.

    The runner's settings are those of :meth:`~LMActorCriticPolicy.initial_state`.
    """
    adapter = mixed_batch_adapter(policy.model)
    if adapter is None:
        raise ValueError("the reference rows need a policy with one active plain LoRA adapter.")
    plain = policy.initial_state(num_envs).actor
    actor = CachedCausalLM(
        plain.model,
        2 * num_envs,
        temperature=plain.temperature,
        output_hidden=plain.output_hidden,
        compact_factor=plain.compact_factor,
        drop_share=plain.drop_share,
        adapter_names=[adapter] * num_envs + [BASE] * num_envs,
    )
    return TokenCacheState.fresh(actor, with_reference=True)

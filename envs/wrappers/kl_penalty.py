"""A KL penalty against a further frozen reference model, added by wrapping."""

from __future__ import annotations

from typing import Any

from rlhf_gym.envs.terms import KLTerm
from rlhf_gym.envs.wrappers.faces import EnvTermWrapper, VecEnvTermWrapper, VectorTermWrapper


class KLPenaltyArgs:
    """``(env, ref_model, kl_coef, estimator="k1", name="extra")``: pay ``−kl_coef·kl_t``.

    The base env already penalises KL to its own reference with its ``kl_coef``; build it with
    ``kl_coef=0`` and wrap to move the penalty into a wrapper, or wrap to add a second
    reference. log π_θ is the env's (handed over, or from a bound policy model). The math is
    :func:`rlhf_gym.envs.rewards.kl_term`, the env's own. Adds ``info["<name>_kl"]`` and
    ``info["<name>_ref_logprob"]``.
    """

    def __init__(
        self,
        env: Any,
        ref_model: Any,
        kl_coef: float,
        estimator: str = "k1",
        name: str = "extra",
    ) -> None:
        term = KLTerm(ref_model, kl_coef, estimator, name)
        self._install(  # type: ignore[attr-defined]
            env, term, False, ref_model=ref_model, kl_coef=kl_coef, estimator=estimator, name=name
        )


class KLPenaltyWrapper(KLPenaltyArgs, EnvTermWrapper):
    """A further KL penalty for :class:`~rlhf_gym.envs.TextGenerationEnv` (see the args class)."""


class KLPenaltyVectorWrapper(KLPenaltyArgs, VectorTermWrapper):
    """A further KL penalty for :class:`~rlhf_gym.envs.TextGenerationVectorEnv`."""


class KLPenaltyVecEnvWrapper(KLPenaltyArgs, VecEnvTermWrapper):
    """A further KL penalty for :class:`~rlhf_gym.envs.TextGenerationVecEnv` (SB3)."""

"""Counter verbosity bloat by penalising or normalising by completion length."""

from __future__ import annotations

from typing import Any, Literal

from rlhf_gym.envs.terms import LengthPenalty
from rlhf_gym.envs.wrappers.faces import EnvTermWrapper, VecEnvTermWrapper, VectorTermWrapper


class LengthPenaltyArgs:
    """``(env, alpha=0.01, mode="subtract")``: change the score with the completion's length L.

    ``"subtract"`` takes ``alpha·L`` off; ``"divide"`` makes it ``score / max(L, 1)``. L counts
    tokens, EOS excluded; the change is ``info["length_penalty"]`` (see
    :class:`~rlhf_gym.envs.terms.LengthPenalty`).
    """

    def __init__(
        self, env: Any, alpha: float = 0.01, mode: Literal["subtract", "divide"] = "subtract"
    ) -> None:
        term = LengthPenalty(alpha, mode)
        self._install(env, term, False, alpha=alpha, mode=mode)  # type: ignore[attr-defined]


class LengthPenaltyWrapper(LengthPenaltyArgs, EnvTermWrapper):
    """Length term for :class:`~rlhf_gym.envs.TextGenerationEnv` (see the args class)."""


class LengthPenaltyVectorWrapper(LengthPenaltyArgs, VectorTermWrapper):
    """Length term for :class:`~rlhf_gym.envs.TextGenerationVectorEnv`."""


class LengthPenaltyVecEnvWrapper(LengthPenaltyArgs, VecEnvTermWrapper):
    """Length term for :class:`~rlhf_gym.envs.TextGenerationVecEnv` (SB3)."""

"""Counter verbosity bloat by penalising or normalising by completion length."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs


class LengthPenaltyWrapper(gym.Wrapper, RecordConstructorArgs):
    """Change the terminal reward with the completion's length ``L`` (tokens, EOS excluded).

    * ``mode="subtract"``: the last step's reward loses ``alpha · L``.
    * ``mode="divide"``: the terminal score becomes ``score / max(L, 1)`` (``alpha`` unused),
      a per-token score that no longer grows by writing more.

    ``info["score"]`` is updated and ``info["length_penalty"]`` holds the change made.

    Args:
        env: a :class:`~rlhf_gym.envs.TextGenerationEnv` (or a wrapper of one).
        alpha: penalty per token for ``"subtract"``, >= 0.
        mode: ``"subtract"`` or ``"divide"``.
    """

    def __init__(
        self, env: gym.Env, alpha: float = 0.01, mode: Literal["subtract", "divide"] = "subtract"
    ) -> None:
        if mode not in ("subtract", "divide"):
            raise ValueError(f"mode must be 'subtract' or 'divide', got {mode!r}.")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}.")
        RecordConstructorArgs.__init__(self, alpha=alpha, mode=mode)
        gym.Wrapper.__init__(self, env)
        self.alpha, self.mode = float(alpha), mode

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step; at the episode's end apply the length term."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            length = len(info["completion_ids"])
            score = float(info["score"])
            if self.mode == "subtract":
                change = -self.alpha * length
            else:
                change = score / max(length, 1) - score
            reward = float(reward + change)
            info = {**info, "score": score + change, "length_penalty": change}
        return obs, reward, terminated, truncated, info

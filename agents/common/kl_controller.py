"""KL-coefficient controllers: fixed, or Ziegler et al.'s (2019) adaptive proportional rule.

β is the env's ``kl_coef`` (it computes the KL part of the reward). The agent's controller
starts from the env's value (``env.get_kl_coef()``) and sets the new one with
``env.set_kl_coef`` after each update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FixedKLController:
    """A constant KL coefficient.

    Attributes:
        value: beta.
    """

    value: float

    def update(self, current_kl: float, n_steps: int) -> float:
        """Return beta unchanged."""
        return self.value


@dataclass
class AdaptiveKLController:
    """``e = clip(KL/target - 1, -0.2, 0.2)``; ``beta <- beta * (1 + e * n_steps / horizon)``.

    Attributes:
        value: current beta.
        target: target mean per-sequence KL in nats (Ziegler: 6).
        horizon: how many sequences it takes to move beta by up to 20% (Ziegler: 10000).
    """

    value: float
    target: float = 6.0
    horizon: int = 10_000

    def __post_init__(self) -> None:
        if self.value <= 0 or self.target <= 0 or self.horizon <= 0:
            raise ValueError(
                f"adaptive KL needs beta, target and horizon > 0; got {self.value}, "
                f"{self.target}, {self.horizon}. Beta is the env's kl_coef: set it > 0, or "
                "pass adaptive_kl=False."
            )

    def update(self, current_kl: float, n_steps: int) -> float:
        """Move beta towards the target given the measured KL over ``n_steps`` sequences."""
        error = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


def make_kl_controller(
    beta: float, adaptive: bool, target: float = 6.0, horizon: int = 10_000
) -> AdaptiveKLController | FixedKLController:
    """Ziegler's adaptive controller, or a fixed beta."""
    return AdaptiveKLController(beta, target, horizon) if adaptive else FixedKLController(beta)

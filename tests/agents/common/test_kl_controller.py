from __future__ import annotations

import pytest
from rlhf_gym.agents.common.kl_controller import AdaptiveKLController


def test_adaptive_kl_controller_follows_ziegler() -> None:
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    assert ctl.update(12.0, 1000) == pytest.approx(0.1 * (1 + 0.2 * 0.1))  # e clipped at +0.2
    before = ctl.value
    assert ctl.update(5.7, 100) == pytest.approx(before * (1 - 0.05 * 0.01))
    assert ctl.update(0.0, 100) == pytest.approx(before * (1 - 0.05 * 0.01) * (1 - 0.2 * 0.01))


def test_adaptive_kl_controller_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="> 0"):
        AdaptiveKLController(0.1, target=0.0)

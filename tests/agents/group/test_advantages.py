from __future__ import annotations

import numpy as np
import pytest
import torch
from rlhf_gym.agents.group import grpo_advantages, rloo_advantages
from rlhf_gym.agents.group.losses import k3_kl


def test_grpo_z_scores_within_each_group() -> None:
    rewards = np.array([[1.0, 2.0, 3.0, 6.0], [0.5, 0.5, 0.5, 0.5]])
    # group 1: mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5)
    expected = np.array([-2.0, -1.0, 0.0, 3.0]) / (np.sqrt(3.5) + 1e-4)
    out = grpo_advantages(rewards)
    np.testing.assert_allclose(out[0], expected, rtol=1e-12)
    np.testing.assert_array_equal(out[1], np.zeros(4))  # all equal: zero, not NaN


def test_rloo_leave_one_out() -> None:
    rewards = np.array([[1.0, 2.0, 3.0, 6.0], [4.0, 4.0, 4.0, 4.0]])
    # 1 - (2+3+6)/3, 2 - (1+3+6)/3, 3 - (1+2+6)/3, 6 - (1+2+3)/3
    expected = [1 - 11 / 3, 2 - 10 / 3, 3 - 3.0, 6 - 2.0]
    np.testing.assert_allclose(rloo_advantages(rewards)[0], expected, rtol=1e-12)
    np.testing.assert_array_equal(rloo_advantages(rewards)[1], np.zeros(4))


def test_rloo_with_two_completions_is_their_difference() -> None:
    np.testing.assert_allclose(rloo_advantages(np.array([[0.25, 1.0]])), [[-0.75, 0.75]])


def test_groups_of_one_are_refused() -> None:
    with pytest.raises(ValueError, match="group_size >= 2"):
        grpo_advantages(np.array([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="group_size >= 2"):
        rloo_advantages(np.array([1.0, 2.0]))


def test_k3_is_zero_at_the_reference_and_positive_elsewhere() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.0, -1.0, -2.0])
    out = k3_kl(logp, ref)
    assert out[0] == 0 and (out[1:] > 0).all()
    torch.testing.assert_close(out[1], torch.exp(torch.tensor(1.0)) - 1.0 - 1.0)

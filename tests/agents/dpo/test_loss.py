import math

import torch
from rlhf_gym.agents.dpo import dpo_loss


def test_loss_matches_a_hand_computation():
    policy_w, policy_l = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    ref_w, ref_l = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -3.0])
    loss, metrics = dpo_loss(policy_w, policy_l, ref_w, ref_l, beta=0.5)
    # pair 0: r_w = 0.5 * 0.5 = 0.25, r_l = 0.5 * -1 = -0.5, margin 0.75
    # pair 1: r_w = 0.5 * -1 = -0.5, r_l = 0.5 * 1 = 0.5, margin -1
    expected = (math.log1p(math.exp(-0.75)) + math.log1p(math.exp(1.0))) / 2
    assert abs(loss.item() - expected) < 1e-6
    assert abs(metrics["dpo/rewards_chosen"] - (-0.125)) < 1e-6
    assert abs(metrics["dpo/rewards_rejected"] - 0.0) < 1e-6
    assert metrics["dpo/reward_accuracy"] == 0.5
    assert abs(metrics["dpo/reward_margin"] - (-0.125)) < 1e-6


def test_gradient_raises_chosen_and_lowers_rejected():
    policy_w = torch.tensor([-3.0], requires_grad=True)
    policy_l = torch.tensor([-3.0], requires_grad=True)
    loss, _ = dpo_loss(policy_w, policy_l, torch.tensor([-3.0]), torch.tensor([-3.0]), beta=0.1)
    loss.backward()
    # descent moves against the gradient: up for chosen, down for rejected, by beta * 0.5
    assert abs(policy_w.grad.item() + 0.05) < 1e-6
    assert abs(policy_l.grad.item() - 0.05) < 1e-6


def test_equal_log_ratios_give_log_two():
    same = torch.tensor([-2.0, -7.0])
    loss, metrics = dpo_loss(same, same - 1.0, same, same - 1.0, beta=0.1)
    assert abs(loss.item() - math.log(2)) < 1e-6 and metrics["dpo/reward_margin"] == 0.0

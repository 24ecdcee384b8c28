"""GRPO math: advantages, clipped surrogate, KL, diagnostics (pure functions, no model)."""

import math

import pytest
import torch

from rl3dedit.editor import sde_step
from rl3dedit.rl import approx_kl, clip_fraction, clipped_surrogate, group_advantages, kl_penalty


def test_group_advantages_per_group_zscore_and_zero_std_drop():
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 0.0, 10.0])
    ids = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    out = group_advantages(rewards, ids, std="group", eps=0.0)
    g0 = torch.tensor([1.0, 2.0, 3.0])
    expected0 = (g0 - g0.mean()) / g0.std(unbiased=False)
    torch.testing.assert_close(out.advantages[:3], expected0)
    torch.testing.assert_close(out.advantages[6:], torch.tensor([-1.0, 1.0]))
    assert out.advantages[3:6].eq(0).all()
    assert out.zero_std_mask.tolist() == [False] * 3 + [True] * 3 + [False] * 2
    assert out.num_zero_std_groups == 1 and out.num_groups == 3
    assert out.zero_std_fraction == pytest.approx(1 / 3)


def test_group_advantages_batch_std_uses_all_rewards():
    rewards = torch.tensor([1.0, 3.0, 10.0, 30.0])
    ids = torch.tensor([0, 0, 1, 1])
    out = group_advantages(rewards, ids, std="batch", eps=1e-4)
    scale = rewards.std(unbiased=False) + 1e-4
    torch.testing.assert_close(out.advantages, torch.tensor([-1.0, 1.0, -10.0, 10.0]) / scale)


def test_group_advantages_refuses_bad_input():
    with pytest.raises(ValueError, match="std must be"):
        group_advantages(torch.ones(2), torch.zeros(2), std="global")
    with pytest.raises(ValueError, match="NaN"):
        group_advantages(torch.tensor([1.0, float("nan")]), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        group_advantages(torch.ones(3), torch.zeros(2))


def test_clipped_surrogate_matches_ppo_cases():
    eps = 0.1
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.5, 0.5, 1.05, 0.5]))
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss = clipped_surrogate(new, old, adv, eps, adv_clip=5.0)
    # A>0, ratio above 1+eps: clipped (1.1); A>0, ratio below: unclipped (0.5) is the max of -A·r terms
    # A<0, ratio inside: unclipped; A<0, ratio below 1-eps: clipped term 0.9 gives the larger loss
    torch.testing.assert_close(loss, torch.tensor([-1.1, -0.5, 1.05, 0.9]))


def test_clipped_surrogate_clamps_advantages_and_gradient_at_ratio_one():
    new = torch.zeros(2, requires_grad=True)
    loss = clipped_surrogate(new, torch.zeros(2), torch.tensor([10.0, -10.0]), 1e-4, adv_clip=5.0)
    torch.testing.assert_close(loss.detach(), torch.tensor([-5.0, 5.0]))
    loss.sum().backward()
    torch.testing.assert_close(new.grad, torch.tensor([-5.0, 5.0]))  # d(-A·exp(x))/dx at x = 0


def test_kl_penalty_equals_closed_form_gaussian_kl():
    torch.manual_seed(0)
    mean, ref = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    std = torch.tensor([0.3, 0.7]).reshape(2, 1, 1)
    kl = kl_penalty(mean, ref, std)
    p = torch.distributions.Normal(mean, std.expand_as(mean))
    q = torch.distributions.Normal(ref, std.expand_as(ref))
    expected = torch.distributions.kl_divergence(p, q).mean(dim=(1, 2))
    torch.testing.assert_close(kl, expected)


def test_kl_penalty_gradient_matches_finite_differences_and_the_analytic_form():
    mean = torch.randn(1, 3, 2, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(1, 3, 2, dtype=torch.float64)
    std = torch.full((1, 1, 1), 0.5, dtype=torch.float64)
    # kl_penalty itself (it computes in fp32): autograd against central differences of its own values. The KL is
    # quadratic in the mean, so central differences are exact up to fp32 rounding.
    kl = kl_penalty(mean.float(), ref.float(), std.float())
    grad, = torch.autograd.grad(kl.sum(), mean)
    step = 1e-2
    numeric = torch.zeros_like(grad)
    for i in range(mean.numel()):
        offset = torch.zeros_like(mean).view(-1)
        offset[i] = step
        offset = offset.view_as(mean)
        plus = kl_penalty((mean + offset).detach().float(), ref.float(), std.float()).sum()
        minus = kl_penalty((mean - offset).detach().float(), ref.float(), std.float()).sum()
        numeric.view(-1)[i] = (plus - minus).double() / (2 * step)
    torch.testing.assert_close(grad, numeric, rtol=1e-3, atol=1e-4)
    # ... and both equal the analytic (mean - ref) / (s² · numel)
    torch.testing.assert_close(grad, (mean - ref).detach() / (std**2 * 6), rtol=1e-5, atol=1e-6)


def test_kl_of_sde_steps_is_zero_for_same_velocity_and_positive_otherwise():
    x, v = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    a = sde_step(x, v, 0.8, 0.6, 0.8, prev_sample=x)
    b = sde_step(x, v + 0.1, 0.8, 0.6, 0.8, prev_sample=x)
    assert kl_penalty(a.mean, a.mean, a.std).abs().max() == 0
    assert (kl_penalty(b.mean, a.mean, a.std) > 0).all()


def test_diagnostics():
    old = torch.zeros(4)
    new = torch.tensor([0.0, 0.2, -0.2, 1e-6])
    assert float(approx_kl(new, old)) == pytest.approx(0.5 * (0.04 + 0.04 + 1e-12) / 4)
    assert float(clip_fraction(new, old, 1e-4)) == pytest.approx(0.5)
    assert math.isclose(float(clip_fraction(old, old, 1e-4)), 0.0)


def test_kl_forms_against_hand_values():
    # diff (1, 3): mean of squares 5; std_dev_t 0.5 and |dt| 0.25 give s = 0.5 · 0.5 = 0.25
    mean, ref = torch.tensor([[[1.0, 3.0]]]), torch.zeros(1, 1, 2)
    std_dev_t = torch.full((1, 1, 1), 0.5)
    std = std_dev_t * 0.25**0.5
    flow_grpo = kl_penalty(mean, ref, std, std_dev_t, form="flow-grpo")
    exact = kl_penalty(mean, ref, std, std_dev_t, form="exact")
    torch.testing.assert_close(flow_grpo, torch.tensor([5 / (2 * 0.25)]))  # / (2 std_dev_t²) = 10
    torch.testing.assert_close(exact, torch.tensor([5 / (2 * 0.0625)]))  # / (2 s²) = 40 = 10 / |dt|
    with pytest.raises(ValueError, match="needs std_dev_t"):
        kl_penalty(mean, ref, std, form="flow-grpo")


def test_flow_grpo_kl_is_the_default_and_equals_exact_kl_times_dt():
    from rl3dedit.rl import RLConfig

    assert RLConfig().kl_form == "flow-grpo"
    x, v = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    a = sde_step(x, v, 0.8, 0.6, 0.8, prev_sample=x)
    b = sde_step(x, v + 0.1, 0.8, 0.6, 0.8, prev_sample=x)
    std_dev_t = a.std / (0.8 - 0.6) ** 0.5
    exact = kl_penalty(b.mean, a.mean, a.std, std_dev_t, form="exact")
    torch.testing.assert_close(kl_penalty(b.mean, a.mean, a.std, std_dev_t, form="flow-grpo"), exact * 0.2)

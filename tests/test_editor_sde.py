"""rl3dedit.editor.sde: the Flow-GRPO SDE step, its log-prob, and MixGRPO windows."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from rl3dedit.editor import WindowSchedule, gaussian_log_prob, sde_std_dev, sde_step, window_steps


def _xv(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 16, 8, generator=g), torch.randn(batch, 16, 8, generator=g)


def test_log_prob_equals_normal_density_mean_over_elements():
    x, v = _xv()
    step = sde_step(x, v, 0.8, 0.6, 0.7, generator=torch.Generator().manual_seed(1))
    normal = torch.distributions.Normal(step.mean, step.std.expand_as(step.mean))
    expected = normal.log_prob(step.prev_sample).mean(dim=(1, 2))
    torch.testing.assert_close(step.log_prob, expected, rtol=0, atol=1e-5)
    assert step.log_prob.shape == (3,) and step.log_prob.dtype == torch.float32


def test_mean_and_std_follow_flow_grpo_formula():
    x, v = _xv()
    sigma, sigma_next, a = 0.7, 0.5, 0.8
    step = sde_step(x, v, sigma, sigma_next, a, generator=torch.Generator().manual_seed(0))
    std_dev_t = a * math.sqrt(sigma / (1 - sigma))
    dt = sigma_next - sigma
    mean = x * (1 + std_dev_t**2 / (2 * sigma) * dt) + v * (1 + std_dev_t**2 * (1 - sigma) / (2 * sigma)) * dt
    torch.testing.assert_close(step.mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step.std.flatten(), torch.full((3,), std_dev_t * math.sqrt(-dt)), rtol=1e-6, atol=0)


def test_ode_step_equals_diffusers_scheduler_step_bit_for_bit():
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    scheduler.set_timesteps(sigmas=[1.0, 0.75, 0.5, 0.25], mu=0.8)
    scheduler.set_begin_index(0)
    x, v = _xv(1)
    expected = scheduler.step(v, scheduler.timesteps[0], x, return_dict=False)[0]
    step = sde_step(x, v, scheduler.sigmas[0], scheduler.sigmas[1], 0.0)
    assert torch.equal(step.prev_sample, expected)
    assert torch.equal(step.log_prob, torch.zeros(1)) and torch.equal(step.std, torch.zeros(1, 1, 1))


def test_first_step_uses_sigma_star_substitute_and_matches_reference_table():
    # docs/references.md §3: the 512², N = 6 schedule; per-step s for a = 0.7 is .70 .72 .50 .39 .31 .22 (s = a first).
    sigmas = torch.tensor([1.0, 0.9037, 0.7897, 0.6525, 0.4842, 0.2730, 0.0])
    s = sde_std_dev(sigmas[:-1], sigmas[1:], 0.7) * torch.sqrt(sigmas[:-1] - sigmas[1:])
    torch.testing.assert_close(s, torch.tensor([0.70, 0.72, 0.50, 0.39, 0.31, 0.22]), rtol=0, atol=6e-3)
    assert torch.isfinite(s).all()


def test_given_prev_sample_reproduces_log_prob_and_detaches():
    x, v = _xv()
    v.requires_grad_(True)
    first = sde_step(x, v, 0.9, 0.8, 0.8, generator=torch.Generator().manual_seed(3))
    again = sde_step(x, v, 0.9, 0.8, 0.8, prev_sample=first.prev_sample)
    assert torch.equal(again.log_prob, first.log_prob)
    assert not again.prev_sample.requires_grad
    again.log_prob.sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_per_member_generators_match_single_draws_and_seeds_differ():
    x, v = _xv(2)
    batched = sde_step(x, v, 0.6, 0.4, 0.8, generator=[torch.Generator().manual_seed(s) for s in (10, 11)])
    single = sde_step(x[1:], v[1:], 0.6, 0.4, 0.8, generator=torch.Generator().manual_seed(11))
    assert torch.equal(batched.prev_sample[1:], single.prev_sample)
    assert not torch.equal(batched.prev_sample[0], batched.prev_sample[1])
    with pytest.raises(ValueError, match="generators for a batch of 2"):
        sde_step(x, v, 0.6, 0.4, 0.8, generator=[torch.Generator()])


def test_per_member_sigmas_broadcast():
    x, v = _xv(2)
    both = sde_step(x, v, torch.tensor([0.9, 0.5]), torch.tensor([0.8, 0.3]), 0.7, prev_sample=x)
    first = sde_step(x[:1], v[:1], 0.9, 0.8, 0.7, prev_sample=x[:1])
    torch.testing.assert_close(both.log_prob[:1], first.log_prob)
    assert both.std.shape == (2, 1, 1)


def test_gaussian_log_prob_closed_form():
    sample, mean = torch.zeros(2, 4), torch.ones(2, 4)
    std = torch.tensor(2.0)
    expected = -1 / 8 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(gaussian_log_prob(sample, mean, std), torch.full((2,), expected))


def test_window_steps_and_errors():
    assert window_steps(12, 4, 0) == [0, 1, 2, 3]
    assert window_steps(12, 4, 7) == [7, 8, 9, 10]
    with pytest.raises(ValueError, match="final sigma->0 step is never trained"):
        window_steps(12, 4, 8)
    with pytest.raises(ValueError, match="window_size must be >= 1"):
        window_steps(12, 0, 0)


def test_progressive_window_moves_like_mixgrpo_and_stops_at_the_last_legal_start():
    # MixGRPO: every `iters_per_shift` iterations the start moves by `stride`; past the last start it stays there
    progressive = WindowSchedule(num_steps=12, window_size=4, strategy="progressive", iters_per_shift=2)
    starts = [progressive.start(i) for i in range(20)]
    assert starts == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 7, 7, 7, 7]
    assert progressive.steps(19) == [7, 8, 9, 10]  # steps 9 and 10 of 12 are trained too
    strided = WindowSchedule(num_steps=12, window_size=4, strategy="progressive", iters_per_shift=3, stride=2,
                             min_start=1)
    assert [strided.start(i) for i in range(0, 15, 3)] == [1, 3, 5, 7, 7]
    assert [strided.start(i) for i in range(3)] == [1, 1, 1]
    rolled = WindowSchedule(num_steps=12, window_size=4, strategy="progressive", stride=2, roll_back=True)
    assert [rolled.start(i) for i in range(6)] == [0, 2, 4, 6, 0, 2]  # MixGRPO's roll_back: back to the start


def test_window_schedule_random_is_replayable():
    random = WindowSchedule(num_steps=12, window_size=4, strategy="random", max_start=5, seed=3)
    draws = [random.start(i) for i in range(40)]
    assert draws == [random.start(i) for i in range(40)]
    assert set(draws) <= set(range(6)) and len(set(draws)) > 2
    assert random.steps(0) == window_steps(12, 4, draws[0])
    with pytest.raises(ValueError, match="does not fit num_steps=12"):
        WindowSchedule(num_steps=12, window_size=4, max_start=9)

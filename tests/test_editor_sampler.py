"""rl3dedit.editor.sampler: schedules, the single velocity call, the loop's recording."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.editor import build_tiny_pipeline
from rl3dedit.editor.sampler import Condition, condition_velocity, denoise, flow_schedule, output_size


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(0)


@pytest.mark.parametrize(("tokens", "expected"), [
    (1024, [1.0, 0.9037, 0.7897, 0.6525, 0.4842, 0.2730, 0.0]),  # 512² output, docs/references.md §3
    (4096, [1.0, 0.9404, 0.8633, 0.7595, 0.6123, 0.3871, 0.0]),  # 1024² output
])
def test_schedule_matches_reference_table_and_leaves_scheduler_alone(pipe, tokens, expected):
    pipe.scheduler.set_timesteps(sigmas=[1.0, 0.5], mu=0.7)
    before = pipe.scheduler.sigmas.clone()
    schedule = flow_schedule(pipe, 6, tokens)
    torch.testing.assert_close(schedule.sigmas, torch.tensor(expected), rtol=0, atol=1e-4)
    torch.testing.assert_close(schedule.timesteps, schedule.sigmas[:-1] * 1000)
    assert torch.equal(pipe.scheduler.sigmas, before)


def test_output_size_keeps_multiples_of_16_and_floors_others(pipe):
    assert output_size(pipe, 192, 192) == (192, 192)
    assert output_size(pipe, 1024, 1024) == (1024, 1024)
    assert output_size(pipe, 100, 200) == (96, 192)


def _condition(pipe, tokens=16, batch=1):
    g = torch.Generator().manual_seed(0)
    return Condition(
        prompt_embeds=torch.randn(batch, 8, 32, generator=g), pooled_prompt_embeds=torch.randn(batch, 32, generator=g),
        text_ids=torch.zeros(8, 3), image_latents=torch.randn(1, tokens, 64, generator=g),
        image_ids=torch.zeros(tokens, 3), latent_ids=torch.zeros(tokens, 3), guidance_scale=2.5, height=64, width=64,
    )


def test_velocity_returns_target_tokens_and_broadcasts_condition(pipe):
    cond = _condition(pipe)
    x = torch.randn(3, 16, 64, generator=torch.Generator().manual_seed(1))
    v = condition_velocity(pipe.transformer, x, torch.tensor(900.0), cond)
    assert v.shape == (3, 16, 64)
    single = condition_velocity(pipe.transformer, x[1:2], torch.tensor(900.0), cond)
    torch.testing.assert_close(single, v[1:2], rtol=0, atol=1e-5)


def test_denoise_records_only_listed_steps(pipe):
    cond = _condition(pipe)
    schedule = flow_schedule(pipe, 4, 16)
    noise = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(2))
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    traj = denoise(pipe.transformer, cond, noise, schedule, [0.0, 0.7, 0.7, 0.0], [1, 2], gens)
    assert traj.recorded.shape == (2, 3, 16, 64) and traj.log_probs.shape == (2, 2)
    ode = denoise(pipe.transformer, cond, noise, schedule, [0.0] * 4, [], gens)
    assert ode.recorded.shape == (2, 0, 16, 64) and ode.log_probs.shape == (2, 0)
    assert not torch.equal(ode.final, traj.final)
    with pytest.raises(ValueError, match="3 noise levels for 4 steps"):
        denoise(pipe.transformer, cond, noise, schedule, [0.0] * 3, [], gens)

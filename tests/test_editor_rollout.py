"""rl3dedit.editor.rollout: sub-batches and chunks of a rollout record."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.editor import Condition, Rollout, StepLogProb


def _rollout(batch=4, k=2, batch_size=3, cond_rows=1) -> Rollout:
    g = torch.Generator().manual_seed(0)
    return Rollout(
        images=torch.rand(batch, 3, 8, 8, generator=g), latents=torch.randn(batch, k + 1, 4, 64, generator=g),
        final_latents=torch.randn(batch, 4, 64, generator=g), log_probs=torch.randn(batch, k, generator=g),
        sigmas=torch.tensor([[1.0, 0.8], [0.8, 0.6]]), timesteps=torch.tensor([1000.0, 800.0]), step_indices=[0, 1],
        condition=Condition(
            image_latents=torch.randn(1, 4, 64), image_ids=torch.zeros(4, 3), latent_ids=torch.zeros(4, 3),
            prompt_embeds=torch.randn(cond_rows, 5, 32), pooled_prompt_embeds=torch.randn(cond_rows, 32),
            text_ids=torch.zeros(5, 3), guidance_scale=2.5, height=32, width=32),
        noise_level=0.8, seeds=[10, 11, 12, 13], num_steps=3, batch_size=batch_size,
    )


def test_select_keeps_members_in_order_and_shares_condition():
    r = _rollout()
    sub = r.select([3, 1])
    assert sub.seeds == [13, 11] and sub.group_size == 2 and sub.batch_size == 2
    assert torch.equal(sub.latents[0], r.latents[3]) and torch.equal(sub.log_probs[1], r.log_probs[1])
    assert sub.condition.prompt_embeds is r.condition.prompt_embeds and sub.num_recorded == 2
    assert (sub.height, sub.width) == (32, 32)
    with pytest.raises(ValueError, match="indices in 0..3"):
        r.select([4])


def test_select_indexes_per_member_condition_rows():
    r = _rollout(cond_rows=4)
    sub = r.select([3, 1])
    assert torch.equal(sub.condition.prompt_embeds, r.condition.prompt_embeds[[3, 1]])
    assert torch.equal(sub.condition.pooled_prompt_embeds, r.condition.pooled_prompt_embeds[[3, 1]])
    assert sub.condition.image_latents is r.condition.image_latents  # one shared row stays shared


def test_member_chunks_follow_sampling_batch_size():
    assert _rollout(batch_size=3).member_chunks() == [[0, 1, 2], [3]]
    assert _rollout(batch_size=4).member_chunks() == [[0, 1, 2, 3]]


def test_step_log_prob_std_dev_t():
    sigma, sigma_next = torch.full((2, 1, 1), 0.64), torch.full((2, 1, 1), 0.48)
    step = StepLogProb(torch.zeros(2), torch.zeros(2, 4, 64), 0.5 * torch.sqrt(sigma - sigma_next), sigma, sigma_next)
    torch.testing.assert_close(step.std_dev_t, torch.full((2, 1, 1), 0.5))

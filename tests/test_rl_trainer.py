"""The GRPO trainer: exact first ratio, gradient accumulation invariance, zero-variance groups, and learning."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from rl3dedit.config import load_config
from rl3dedit.editor import grid_prompt
from rl3dedit.rewards import RewardBreakdown
from rl3dedit.rl import (
    GRPOTrainer,
    PolicyBatch,
    PreparedDataset,
    accumulate_policy_gradients,
    build_editor,
    parse_manifest,
    prepare_dataset,
)


def small_config(**rl):
    """The tiny preset at 32-px views (a 96-px grid, 36 tokens) so the loop runs in about a second per update."""
    cfg = load_config("tiny")
    rl_updates = {"ema": False, "prepare_num_steps": 1, "checkpoint_every": 1000, "image_every": 1000, **rl}
    return cfg.model_copy(update={"views": cfg.views.model_copy(update={"view_size": 32}),
                                  "rl": cfg.rl.model_copy(update=rl_updates)})


ONE_SAMPLE = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                          "prompts": ["make it red"], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 8]]}]}


def redness(views, *, cameras, anchor_index, anchor_reference):
    """A learnable reward with the `CompositeReward.score` signature: mean red minus mean green/blue."""
    value = views[:, :, 0].mean(dim=(1, 2, 3)) - views[:, :, 1:].mean(dim=(1, 2, 3, 4))
    return RewardBreakdown(total=value, terms={"red": value})


def constant(views, *, cameras, anchor_index, anchor_reference):
    return RewardBreakdown(total=torch.ones(views.shape[0]), terms={})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    cfg = small_config()
    root = tmp_path_factory.mktemp("prepared")
    editor = build_editor(cfg, "cpu")
    prepare_dataset(cfg, parse_manifest(ONE_SAMPLE), root, editor=editor)
    return PreparedDataset(root)


def test_first_update_has_ratio_exactly_one_and_changes_lora(prepared, tmp_path):
    cfg = small_config(learning_rate=1e-2)
    editor = build_editor(cfg, "cpu")
    trainer = GRPOTrainer(cfg, editor, prepared, redness, tmp_path, Accelerator(cpu=True))
    before = {n: p.detach().clone() for n, p in trainer.named_params.items()}
    trainer.train(1)
    metrics = trainer.history[0]
    assert metrics["policy/ratio_min"] == 1.0 and metrics["policy/ratio_max"] == 1.0
    assert metrics["policy/clipfrac"] == 0.0 and metrics["policy/approx_kl"] == 0.0
    unchanged = [n for n, p in trainer.named_params.items() if "lora_B" in n and torch.equal(p, before[n])]
    assert not unchanged, f"LoRA B weights that did not change: {unchanged}"
    for key in ("reward/red", "reward/mean", "reward/std", "adv/mean", "adv/zero_std_frac", "time/rollout_s",
                "time/reward_s", "time/update_s", "policy/kl_ref"):
        assert key in metrics
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1


def test_zero_variance_groups_are_dropped_without_a_step(prepared, tmp_path):
    cfg = small_config(kl_coef=0.1)
    editor = build_editor(cfg, "cpu")
    trainer = GRPOTrainer(cfg, editor, prepared, constant, tmp_path, Accelerator(cpu=True))
    before = [p.detach().clone() for p in trainer.params]
    trainer.train(1)
    assert trainer.history[0]["adv/zero_std_frac"] == 1.0
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.params))


def test_two_micro_batches_of_one_equal_one_batch_of_two(prepared):
    cfg = small_config()
    editor = build_editor(cfg, "cpu")
    with torch.no_grad():  # a non-zero adapter so every LoRA weight gets a gradient
        gen = torch.Generator().manual_seed(0)
        for p in editor.trainable_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    sample = prepared[0]
    from rl3dedit.views import tile

    rollout = editor.rollout(tile(sample.source_views, 3, 3, "aligned"), grid_prompt(sample.prompt), group_size=2,
                             num_steps=4, guidance=2.5, seeds=[3, 4], noise_level=0.8, window=(0, 2))
    adv = torch.tensor([1.3, -0.7])
    params = editor.trainable_parameters()

    def grads(batches):
        for p in params:
            p.grad = None
        accumulate_policy_gradients(editor, batches, clip_range=1e-4, adv_clip=5.0, kl_coef=0.05,
                                    num_terms=2 * rollout.num_recorded)
        return [p.grad.clone() for p in params]

    one = grads([PolicyBatch(rollout, [0, 1], adv)])
    two = grads([PolicyBatch(rollout, [0], adv[:1]), PolicyBatch(rollout, [1], adv[1:])])
    assert any(g.abs().max() > 0 for g in one)
    for a, b in zip(one, two):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_trainer_learns_a_simple_reward(prepared, tmp_path):
    """The exact trainer raises mean redness on held-out seeds by many standard errors (~20 s on 2 cores)."""
    from rl3dedit.views import split, tile

    cfg = small_config(learning_rate=0.1, group_size=8)
    editor = build_editor(cfg, "cpu")
    trainer = GRPOTrainer(cfg, editor, prepared, redness, tmp_path, Accelerator(cpu=True))
    sample = prepared[0]
    grid = tile(sample.source_views, 3, 3, "aligned")

    def held_out() -> torch.Tensor:
        rollout = editor.rollout(grid, grid_prompt(sample.prompt), group_size=16, num_steps=4, guidance=2.5,
                                 seeds=list(range(10**6, 10**6 + 16)), noise_level=0.8, window=(0, 2))
        views = torch.stack([split(image, 3, 3, "aligned", (32, 32)) for image in rollout.images])
        return redness(views, cameras=None, anchor_index=0, anchor_reference=None).total

    before = held_out()
    trainer.train(30)
    after = held_out()
    stderr = ((before.var() + after.var()) / 16).sqrt()
    assert after.mean() - before.mean() > 5 * stderr, (before.mean(), after.mean(), stderr)

"""rl3dedit.editor.grid_editor: ODE parity with the stock pipeline, SDE rollouts, recorded windows, exact ratios."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import rl3dedit.views
from rl3dedit.editor import Editor, KontextGridEditor, build_tiny_pipeline

PROMPT = "turn the stone horse into bronze"


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(0)


@pytest.fixture(scope="module")
def editor(pipe):
    return KontextGridEditor(pipe, rows=3, cols=3, max_sequence_length=32)


@pytest.fixture(scope="module")
def image():
    return torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(0))


def _stock(pipe, image, seed, output_type, steps=4, size=(96, 128)):
    height, width = size
    return pipe(image=image, prompt=PROMPT, num_inference_steps=steps, guidance_scale=2.5,
                generator=torch.Generator("cpu").manual_seed(seed), height=height, width=width,
                max_area=height * width, _auto_resize=False, max_sequence_length=32, output_type=output_type).images


def test_ode_sample_equals_stock_pipeline_bit_for_bit(pipe, editor, image):
    result = editor.sample(image, PROMPT, num_steps=4, guidance_scale=2.5, seed=7)
    assert torch.equal(result.final_latents, _stock(pipe, image[None], 7, "latent"))
    assert torch.equal(result.images, _stock(pipe, image[None], 7, "pt"))
    assert result.images.shape == (1, 3, 96, 128) and result.latents.shape[1] == 0 and result.step_indices == []


def test_ode_parity_with_pil_input(pipe, editor, image):
    pil = Image.fromarray((image.permute(1, 2, 0) * 255).round().byte().numpy())
    result = editor.sample(pil, PROMPT, num_steps=3, guidance_scale=2.5, seed=1)
    assert torch.equal(result.images, _stock(pipe, pil, 1, "pt", steps=3))


def test_rollout_records_window_with_explicit_sigmas(pipe, editor, image):
    rollout = editor.rollout(image, PROMPT, group_size=3, num_steps=6, guidance_scale=2.5, seeds=[1, 2, 3],
                             noise_level=0.8, window=(1, 3))
    assert rollout.step_indices == [1, 2, 3]
    assert rollout.latents.shape == (3, 4, 48, 64) and rollout.latents.dtype == torch.float32
    assert rollout.log_probs.shape == (3, 3) and torch.isfinite(rollout.log_probs).all()
    assert rollout.condition.image_latents.shape == (1, 48, 64) and rollout.condition.prompt_embeds.shape[0] == 1
    scheduler_copy = type(pipe.scheduler).from_config(pipe.scheduler.config)
    scheduler_copy.set_timesteps(sigmas=[1 - i / 6 for i in range(6)], mu=0.5 + (48 - 256) * 0.65 / 3840)
    torch.testing.assert_close(rollout.sigmas[:, 0], scheduler_copy.sigmas[1:4])
    torch.testing.assert_close(rollout.sigmas[:, 1], scheduler_copy.sigmas[2:5])
    torch.testing.assert_close(rollout.timesteps, scheduler_copy.timesteps[1:4])
    sub = rollout.select([2, 0])
    assert sub.seeds == [3, 1] and torch.equal(sub.latents[1], rollout.latents[0])


def test_window_outside_is_ode_and_matches_stock_before_the_window(pipe, editor, image):
    # Steps before the window are ODE steps: the recorded input of window step 2 equals the stock run's latents then.
    rollout = editor.sample(image, PROMPT, num_steps=5, guidance_scale=2.5, seed=4, noise_level=0.9, window=(2, 2))
    captured = {}

    def grab(_pipe, i, _t, kwargs):
        captured[i] = kwargs["latents"].clone()
        return kwargs

    pipe(image=image[None], prompt=PROMPT, num_inference_steps=5, guidance_scale=2.5,
         generator=torch.Generator("cpu").manual_seed(4), height=96, width=128, max_area=96 * 128,
         _auto_resize=False, max_sequence_length=32, output_type="latent", callback_on_step_end=grab)
    assert torch.equal(rollout.latents[0, 0], captured[1][0])
    assert not torch.equal(rollout.latents[0, 1], captured[2][0])


def test_ratio_is_exactly_one_on_unchanged_weights(editor, image):
    rollout = editor.rollout(image, PROMPT, group_size=4, num_steps=4, guidance_scale=2.5, seeds=[5, 6, 7, 8],
                             noise_level=0.7, window=None, batch_size=2)
    assert rollout.step_indices == [0, 1, 2] and rollout.member_chunks() == [[0, 1], [2, 3]]
    for k in range(rollout.num_recorded):
        for chunk in rollout.member_chunks():
            new = editor.log_prob(rollout, k, members=chunk)
            assert torch.equal(torch.exp(new.log_prob - rollout.log_probs[chunk, k]), torch.ones(len(chunk)))
            assert new.mean.shape == (2, 48, 64) and new.std.shape == (2, 1, 1)
    # A different batch composition is only equal up to float rounding (documented tolerance).
    whole = editor.log_prob(rollout, 1)
    torch.testing.assert_close(whole.log_prob, rollout.log_probs[:, 1], rtol=0, atol=1e-5)


def test_seeds_are_reproducible_and_distinct(editor, image):
    kwargs = dict(group_size=2, num_steps=3, guidance_scale=2.5, noise_level=0.8, window=(0, 2))
    a = editor.rollout(image, PROMPT, seeds=[11, 12], **kwargs)
    b = editor.rollout(image, PROMPT, seeds=[11, 12], **kwargs)
    assert torch.equal(a.images, b.images) and torch.equal(a.log_probs, b.log_probs)
    assert not torch.allclose(a.final_latents[0], a.final_latents[1])
    # A member's trajectory does not depend on the other members (up to batch-size float rounding).
    alone = editor.sample(image, PROMPT, num_steps=3, guidance_scale=2.5, seed=12, noise_level=0.8, window=(0, 2))
    torch.testing.assert_close(alone.final_latents[0], a.final_latents[1], rtol=0, atol=1e-4)


def test_invalid_windows_and_ode_log_prob_fail_clearly(editor, image):
    with pytest.raises(ValueError, match="never trained"):
        editor.sample(image, PROMPT, num_steps=4, guidance_scale=2.5, seed=0, noise_level=0.8, window=(2, 2))
    with pytest.raises(ValueError, match="needs noise_level > 0"):
        editor.sample(image, PROMPT, num_steps=4, guidance_scale=2.5, seed=0, window=(0, 2))
    ode = editor.sample(image, PROMPT, num_steps=2, guidance_scale=2.5, seed=0)
    with pytest.raises(ValueError, match="no SDE steps"):
        editor.log_prob(ode, 0)
    with pytest.raises(ValueError, match="one seed per member"):
        editor.rollout(image, PROMPT, group_size=2, num_steps=2, guidance_scale=2.5, seeds=[1], noise_level=0.5, window=None)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        editor.sample(image[None], PROMPT, num_steps=2, guidance_scale=2.5, seed=0)


def test_edit_views_tiles_edits_and_splits(editor):
    views = torch.rand(9, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    result = editor.edit_views(views, "make it snowy", num_steps=2, guidance_scale=2.5, seed=3)
    assert result.views.shape == views.shape and result.grid.shape == result.source_grid.shape
    assert "3x3 grid" in result.prompt and "all nine views" in result.prompt and result.seed == 3
    assert torch.equal(rl3dedit.views.split(result.source_grid, 3, 3, "aligned", (64, 64)), views)
    again = editor.edit_views(views, "make it snowy", num_steps=2, guidance_scale=2.5, seed=3)
    assert torch.equal(again.views, result.views)
    with pytest.raises(ValueError, match="do not fill a 3x3 grid"):
        editor.edit_views(views[:4], "x", num_steps=2, guidance_scale=2.5, seed=0)


def test_edit_views_seeds_batched_equals_one_by_one(editor):
    views = torch.rand(9, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    batched = editor.edit_views_seeds(views, "make it snowy", num_steps=2, guidance_scale=2.5, seeds=[3, 4])
    assert [r.seed for r in batched] == [3, 4]
    for result in batched:
        alone = editor.edit_views(views, "make it snowy", num_steps=2, guidance_scale=2.5, seed=result.seed)
        torch.testing.assert_close(result.views, alone.views, atol=1e-4, rtol=0)
    assert (batched[0].views - batched[1].views).abs().mean() > 1e-3  # different seeds, different edits


def _fake_tile(views, rows, cols, layout):
    return views.reshape(rows, cols, *views.shape[1:]).permute(2, 0, 3, 1, 4).reshape(3, rows * views.shape[2], -1)


def _fake_split(grid, rows, cols, layout, view_size):
    h, w = view_size
    return grid.reshape(3, rows, h, cols, w).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, h, w)


def test_edit_views_glue_with_stand_in_grid_functions(editor, monkeypatch):
    # Independent of rl3dedit.views (written in parallel): a plain row-major tiling stands in for tile/split.
    monkeypatch.setattr(rl3dedit.views, "tile", _fake_tile, raising=False)
    monkeypatch.setattr(rl3dedit.views, "split", _fake_split, raising=False)
    assert isinstance(editor, Editor)
    views = torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    result = editor.edit_views(views, "make it snowy", num_steps=2, guidance_scale=2.5, seed=3)
    assert result.views.shape == views.shape and result.grid.shape == (3, 96, 144)
    assert torch.equal(result.source_grid[:, 32:64, 48:96], views[4])
    assert torch.equal(result.views[4], result.grid[:, 32:64, 48:96])
    stock = editor.sample(result.source_grid, result.prompt, num_steps=2, guidance_scale=2.5, seed=3)
    assert torch.equal(stock.images[0], result.grid)


def test_grid_editor_satisfies_the_editor_contracts():
    from rl3dedit.editor import TrainableEditor

    editor = KontextGridEditor(build_tiny_pipeline(1), max_sequence_length=32)  # its own pipeline: a LoRA is added
    assert isinstance(editor, Editor) and isinstance(editor, TrainableEditor)
    editor.add_lora(rank=2, alpha=2)
    named = editor.named_trainable_parameters()
    assert named and all("lora" in name for name in named)
    assert [id(p) for p in named.values()] == [id(p) for p in editor.trainable_parameters()]
    editor.train()
    assert editor.transformer.training
    editor.eval()
    assert not editor.transformer.training

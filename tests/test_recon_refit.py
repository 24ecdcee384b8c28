"""Warm-started refit to edited views (rl3dedit.recon.refit): the edit lands, untouched regions stay put."""

import pytest
import torch

from rl3dedit.recon import ReconConfig, closed_form_colors, contribution_sums, psnr, refit
from rl3dedit.recon.loop import Views
from rl3dedit.render import render
from rl3dedit.scene import Capture, GaussianScene, rgb_to_sh_dc
from rl3dedit.synthetic import make_synthetic_scene
from rl3dedit.views import orbit_cameras

BACKGROUND = (1.0, 1.0, 1.0)


def _views(scene: GaussianScene, cameras) -> torch.Tensor:
    with torch.no_grad():
        return render(scene, cameras, mode="RGB", background=BACKGROUND).rgb.clamp(0, 1)


@pytest.fixture(scope="module")
def setup():
    source = make_synthetic_scene(400, seed=0)
    centre, axes = torch.tensor([0.0, 0.0, 0.45]), torch.tensor([0.25, 0.25, 0.45])
    blob = (((source.means - centre) / axes).norm(dim=1) - 1).abs() < 1e-3  # the red centre ellipsoid's shell
    sh_dc = source.sh_dc.clone()
    sh_dc[blob] = rgb_to_sh_dc(torch.tensor([0.1, 0.2, 0.9]))
    target = source.with_params(sh_dc=sh_dc)
    cameras = orbit_cameras(9, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=32, height=32, fov_deg=50.0)
    held = orbit_cameras(1, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=45.0, width=32, height=32, fov_deg=50.0,
                         start_azimuth_deg=20.0)
    return source, target, cameras, held


def test_refit_moves_toward_the_edit_and_keeps_the_rest(setup) -> None:
    source, target, cameras, held = setup
    edited, before = _views(target, cameras), _views(source, cameras)
    changed = ((edited - before).abs().amax(1, keepdim=True) > 0.05).expand_as(edited)
    assert 0.02 < changed.float().mean() < 0.5
    config = ReconConfig(lr_sh0=0.05, eval_every=10, refit_color_init_iters=0)  # the gradient steps alone
    result = refit(source, cameras, edited, config, iters=30, holdout=Capture(cameras=held, images=_views(target, held)))
    after = _views(result.scene, cameras)
    error_before = (before - edited).abs()[changed].mean()
    error_after = (after - edited).abs()[changed].mean()
    assert error_after < 0.6 * error_before, (float(error_before), float(error_after))
    drift = (after - before).abs()[~changed].mean()
    assert drift < 0.01, float(drift)
    assert result.scene.num_gaussians == source.num_gaussians, "no densification by default"
    assert result.metrics["train_psnr"] > float(psnr(before, edited)) + 2.0
    assert result.history[-1].holdout_psnr > result.history[0].holdout_psnr + 2.0
    assert {"holdout_psnr", "holdout_ssim", "wall_time_s"} <= result.metrics.keys()


def test_refit_to_identical_views_barely_changes_unseen_views(setup) -> None:
    source, _, cameras, held = setup
    result = refit(source, cameras, _views(source, cameras), ReconConfig(), iters=20)
    assert float(psnr(_views(result.scene, held), _views(source, held))) > 40.0
    assert torch.equal(source.means, make_synthetic_scene(400, seed=0).means), "the source scene is not modified"


def test_refit_rejects_mismatched_views(setup) -> None:
    source, _, cameras, _ = setup
    with pytest.raises(ValueError, match=r"edited_views has shape \(9, 3, 16, 16\), expected \(9, 3, 32, 32\)"):
        refit(source, cameras, torch.zeros(9, 3, 16, 16), ReconConfig(), iters=1)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        refit(source, cameras, torch.full((9, 3, 32, 32), 255.0), ReconConfig(), iters=1)


def test_contribution_sums_split_each_pixel_by_render_weight(setup) -> None:
    source, _, cameras, _ = setup
    values = torch.rand(len(cameras), 2, 32, 32, generator=torch.Generator().manual_seed(0))
    sums, weights = contribution_sums(source, cameras, values)
    alpha = render(source, cameras, mode="RGB").alpha  # (V, 1, H, W): the per-pixel sum of render weights
    assert sums.shape == (source.num_gaussians, 2) and weights.shape == (source.num_gaussians,)
    assert torch.allclose(weights.sum(), alpha.sum(), rtol=1e-4)
    assert torch.allclose(sums.sum(0), (values * alpha).sum((0, 2, 3)), rtol=1e-4)
    assert (weights >= 0).all() and (weights > 0).sum() > 0.5 * source.num_gaussians


def test_closed_form_colours_land_a_recolour_and_leave_matching_views_alone(setup) -> None:
    source, target, cameras, held = setup
    views = Views(cameras, _views(source, cameras))
    background = torch.tensor(BACKGROUND)
    same = closed_form_colors(source, views, background, iters=2)
    assert torch.allclose(same.sh_dc, source.sh_dc, atol=1e-3), "nothing moves where the views match the render"
    edited = Views(cameras, _views(target, cameras))
    recoloured = closed_form_colors(source, edited, background, iters=3)
    assert torch.equal(recoloured.means, source.means)
    before = float(psnr(_views(source, held), _views(target, held)))
    after = float(psnr(_views(recoloured, held), _views(target, held)))
    assert after > before + 15, (before, after)


def test_refit_settings_all_views_per_step_and_appearance_rates(setup) -> None:
    source, target, cameras, held = setup
    edited = _views(target, cameras)
    config = ReconConfig(refit_color_init_iters=2, refit_views_per_step=0, refit_appearance_lr_scale=2.0)
    result = refit(source, cameras, edited, config, iters=3, snapshots=[1, 3])
    assert sorted(result.snapshots) == [1, 3] and result.metrics["init_time_s"] > 0
    assert torch.equal(result.snapshots[3].sh_dc, result.scene.sh_dc)
    assert result.metrics["train_psnr"] > 35, result.metrics

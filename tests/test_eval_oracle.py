"""Oracle edits (rl3dedit.eval.oracle): known 3D edits with ground truth, their masks and scores."""

import math

import pytest
import torch

from rl3dedit.eval.oracle import (
    Box,
    Sphere,
    lift_mask,
    make_oracle,
    masked_psnr,
    oracle_renders,
    recolour,
    region_mask,
    score_oracle,
)
from rl3dedit.recon import ReconConfig, refit
from rl3dedit.render import render_images
from rl3dedit.render.config import RenderConfig
from rl3dedit.synthetic import make_synthetic_scene
from rl3dedit.views import orbit_cameras

BACKGROUND = (1.0, 1.0, 1.0)
RENDER = RenderConfig(background=BACKGROUND)


@pytest.fixture(scope="module")
def setup():
    scene = make_synthetic_scene(400, seed=0)
    cameras = orbit_cameras(12, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=32, height=32,
                            fov_deg=50.0)
    return scene, cameras


def test_regions_select_gaussians_by_centre(setup) -> None:
    scene, _ = setup
    box = region_mask(scene, Box((-0.3, -0.3, 0.0), (0.3, 0.3, 0.9)))
    ball = region_mask(scene, Sphere((0.0, 0.0, 0.45), 0.5))
    assert 0 < int(box.sum()) < scene.num_gaussians and 0 < int(ball.sum()) < scene.num_gaussians
    inside = (scene.means - torch.tensor([0.0, 0.0, 0.45])).norm(dim=1) <= 0.5
    assert torch.equal(ball, inside)
    with pytest.raises(ValueError, match="none of the scene"):
        recolour(scene, Sphere((50.0, 50.0, 50.0), 0.1))


def test_lifted_2d_mask_recovers_the_region(setup) -> None:
    scene, cameras = setup
    region = region_mask(scene, Sphere((0.0, 0.0, 0.45), 0.5))
    oracle = recolour(scene, region, color=(0.0, 1.0, 0.0))
    # A 2D segmentation of the region in every view: where recolouring it changes the render.
    change = render_images(oracle.edited, cameras, BACKGROUND) - render_images(scene, cameras, BACKGROUND)
    masks = (change.abs().amax(1, keepdim=True) > 0.1).float()
    lifted = lift_mask(scene, cameras, masks)
    print(int((lifted & region).sum()), int((lifted & ~region).sum()), int(region.sum()))
    assert (lifted & region).sum() >= 0.8 * region.sum()
    assert (lifted & ~region).sum() <= 0.25 * region.sum()


@pytest.mark.parametrize("kind", ["recolour", "remove", "add", "global"])
def test_every_kind_has_ground_truth_and_a_mask(setup, kind: str) -> None:
    scene, cameras = setup
    oracle = make_oracle(kind, scene, cameras, extent=1.0, region_fraction=0.5)
    counts = {"recolour": 0, "remove": -int(oracle.touched_source.sum()), "add": 200, "global": 0}
    assert oracle.edited.num_gaussians == scene.num_gaussians + counts[kind]
    train = [0, 3, 6, 9]
    truth = oracle_renders(oracle, cameras, train, RENDER)
    perfect = score_oracle(oracle.edited, oracle, cameras, train, RENDER, truth)
    untouched = score_oracle(scene, oracle, cameras, train, RENDER, truth)
    assert perfect["novel_psnr"] > 90 and perfect["train_psnr"] > 90 and perfect["num_novel_views"] == 8
    assert untouched["novel_psnr"] < perfect["novel_psnr"] - 20
    if kind == "global":
        assert math.isnan(untouched["preservation_psnr"]), "a global edit leaves no pixel outside it"
    else:
        # The source itself is perfectly preserved; the oracle scene differs from it only inside the mask.
        assert untouched["preservation_psnr"] > 90 and perfect["preservation_psnr"] > 40
        assert 0.0 < float(truth.novel_outside.float().mean()) < 1.0


def test_masked_psnr_ignores_pixels_outside_the_mask() -> None:
    pred, target = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    pred[:, :, 0, 0] = 1.0
    keep = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    assert masked_psnr(pred, target, keep) == pytest.approx(10 * math.log10(16), rel=1e-5)
    keep[:, :, 0, 0] = False
    assert masked_psnr(pred, target, keep) == pytest.approx(100.0)
    assert math.isnan(masked_psnr(pred, target, torch.zeros_like(keep)))


def test_fast_refit_recovers_a_recolour_on_novel_views(setup) -> None:
    scene, cameras = setup
    oracle = make_oracle("recolour", scene, cameras, extent=1.0, region_fraction=0.5)
    train = [0, 2, 4, 6, 8, 10]
    edited_views = render_images(oracle.edited, cameras[train], BACKGROUND)
    config = ReconConfig(refit_color_init_iters=3)
    before = score_oracle(scene, oracle, cameras, train, RENDER)
    result = refit(scene, cameras[train], edited_views, config, iters=5, background=BACKGROUND)
    after = score_oracle(result.scene, oracle, cameras, train, RENDER)
    assert after["novel_psnr"] > before["novel_psnr"] + 10, (before, after)
    assert after["preservation_psnr"] > 35, after


def test_oracle_case_runs_the_edit_jobs_view_set_and_refit(setup) -> None:
    from rl3dedit.config import RunConfig
    from rl3dedit.eval.oracle import run_oracle_case

    scene, cameras = setup
    config = RunConfig(name="test").override("views.view_size", 32).override("recon.refit_iters", 2)
    config = config.override("recon.refit_color_init_iters", 2)
    case = run_oracle_case("recolour", scene, cameras, config, region_fraction=0.5)
    assert len(case.view_indices) == 9 and case.metrics["num_novel_views"] == 3
    assert case.metrics["refit_steps"] == 2 and case.metrics["touched_gaussians"] > 0
    assert case.metrics["novel_psnr"] > 30 and case.metrics["train_psnr"] > 30, case.metrics

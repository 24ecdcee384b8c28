"""Base 3DGS fit on a small synthetic capture (rl3dedit.recon.fit)."""

import math

import pytest
import torch

from rl3dedit.recon import FitResult, ReconConfig, fit, holdout_split
from rl3dedit.scene import Capture
from rl3dedit.synthetic import make_synthetic_capture

# Fast rates for a few dozen CPU steps (gsplat's defaults are tuned for 30k GPU steps).
FAST = dict(lr_sh0=0.02, lr_opacities=0.1, lr_means=1e-3, lr_scales=0.02, eval_every=10)


@pytest.fixture(scope="module")
def capture() -> Capture:
    return make_synthetic_capture(num_views=16, size=32, seed=0, num_gaussians=300)[1]


def test_holdout_split_every_eighth() -> None:
    train, holdout = holdout_split(17, 8)
    assert holdout == [0, 8, 16] and len(train) == 14 and not set(train) & set(holdout)
    assert holdout_split(5, 0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(ValueError, match="leaves no training view"):
        holdout_split(1, 1)


def test_fit_improves_held_out_psnr(capture: Capture) -> None:
    calls = []
    result = fit(capture, ReconConfig(densify=False, **FAST), iters=30, seed=0,
                 progress=lambda what, i, total, info=None: calls.append((i, total, info)))
    assert isinstance(result, FitResult)
    first, last = result.history[0], result.history[-1]
    assert first.iteration == 0 and last.iteration == 30
    assert last.holdout_psnr > first.holdout_psnr + 3.0, result.history
    assert result.metrics["holdout_psnr"] == pytest.approx(last.holdout_psnr, abs=1e-4)
    assert 0 < result.metrics["holdout_ssim"] <= 1
    assert result.metrics["num_holdout_views"] == 2 and result.metrics["num_train_views"] == 14
    assert result.metrics["wall_time_s"] >= result.metrics["train_time_s"] > 0
    assert [c[0] for c in calls] == list(range(1, 31)) and calls[-1][1] == 30
    assert "holdout_psnr" in calls[9][2] and "holdout_psnr" not in calls[0][2]
    assert result.scene.means.device.type == "cpu" and not result.scene.means.requires_grad


def test_fit_is_reproducible_and_densifies(capture: Capture) -> None:
    config = ReconConfig(refine_start_iter=2, refine_every=3, grow_grad2d=1e-5, **FAST)
    a = fit(capture, config, iters=6, seed=3, holdout_every=0)
    b = fit(capture, config, iters=6, seed=3, holdout_every=0)
    assert torch.equal(a.scene.means, b.scene.means)
    assert a.scene.num_gaussians > capture.points.shape[0], "low grow threshold: Gaussians were added"
    assert "holdout_psnr" not in a.metrics and math.isnan(a.history[-1].holdout_psnr)


def test_fit_without_points_seeds_randomly_in_the_frustums(capture: Capture) -> None:
    bare = Capture(cameras=capture.cameras, images=capture.images, name="bare")
    result = fit(bare, ReconConfig(random_init_points=200, densify=False), iters=1, holdout_every=0)
    assert result.scene.num_gaussians == 200


def test_fit_rejects_bad_arguments(capture: Capture) -> None:
    with pytest.raises(ValueError, match="iters must be >= 1, got 0"):
        fit(capture, ReconConfig(), iters=0)
    with pytest.raises(ValueError, match="background must be three values in"):
        fit(capture, ReconConfig(), iters=1, background=(2.0, 0.0, 0.0))

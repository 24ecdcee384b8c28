"""Depth warping and Ph-Loss on an analytic scene: a textured plane seen by cameras on an arc."""

from __future__ import annotations

import math

import pytest
import torch

from rl3dedit.geometry import photometric_reprojection_loss, unproject_depth, warp_view
from rl3dedit.geometry.warp import photometric_error, pixel_grid, ssim_dissimilarity
from rl3dedit.scene.pose import invert_pose

H = W = 48


def look_at(center: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """World-to-camera OpenCV pose of a camera at `center` looking at `target` (world y is down)."""
    forward = torch.nn.functional.normalize(target - center, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward), dim=0)
    down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, center
    return invert_pose(c2w)


def plane_scene(num_views: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact renders of the textured plane z = 0 (images, z-depths, viewmats, Ks) from an arc at distance 4."""
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]])
    viewmats, images, depths = [], [], []
    for i in range(num_views):
        angle = math.radians(-20 + 40 * i / (num_views - 1))
        center = torch.tensor([4 * math.sin(angle), 0.3, -4 * math.cos(angle)])
        viewmat = look_at(center, torch.zeros(3))
        rays = unproject_depth(torch.ones(1, H, W), K[None])[0]  # camera-frame directions with z = 1
        c2w = invert_pose(viewmat)
        dirs = rays @ c2w[:3, :3].T
        t = -center[2] / dirs[..., 2]  # hit z = 0
        hits = center + t[..., None] * dirs
        x, y = hits[..., 0], hits[..., 1]
        image = torch.stack([0.5 + 0.4 * torch.sin(3 * x) * torch.cos(2 * y),
                             0.5 + 0.4 * torch.cos(4 * x + y), 0.5 + 0.3 * torch.sin(5 * y - x)])
        viewmats.append(viewmat)
        images.append(image)
        depths.append(t)  # direction z is 1, so the ray parameter is the z-depth
    return torch.stack(images), torch.stack(depths), torch.stack(viewmats), K.expand(num_views, 3, 3).clone()


def test_consistent_views_give_near_zero_loss():
    images, depths, viewmats, Ks = plane_scene()
    result = photometric_reprojection_loss(images, depths, viewmats, Ks)
    assert result.per_pair.shape == (4,) and result.masks.shape == (4, H, W)
    assert (result.valid_fraction > 0.7).all()
    assert float(result.mean) < 0.02


def test_shuffled_and_corrupted_views_score_worse():
    images, depths, viewmats, Ks = plane_scene()
    good = float(photometric_reprojection_loss(images, depths, viewmats, Ks).mean)
    shuffled = float(photometric_reprojection_loss(images[[0, 3, 1, 4, 2]], depths, viewmats, Ks).mean)
    noisy = (images + 0.2 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    corrupted = float(photometric_reprojection_loss(noisy, depths, viewmats, Ks).mean)
    assert shuffled > 5 * good and corrupted > 5 * good


def test_rendered_3dgs_views_with_rendered_depth_give_small_loss():
    """Renders of one Gaussian scene (RGB + expected depth) are consistent; shuffled renders are not."""
    from rl3dedit.render import render
    from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
    from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

    angles = torch.deg2rad(torch.arange(4) * 10.0)
    target = torch.tensor(SYNTHETIC_TARGET)
    eyes = target + torch.stack([2.4 * angles.cos(), 2.4 * angles.sin(), torch.full_like(angles, 1.35)], dim=1)
    cameras = Cameras(look_at_viewmats(eyes, target, torch.tensor([0.0, 0.0, 1.0])),
                      intrinsics_from_fov(50.0, W, H).expand(4, 3, 3).clone(), W, H)
    with torch.no_grad():
        out = render(make_synthetic_scene(seed=0), cameras, mode="RGB+ED", background=(1.0, 1.0, 1.0))
    images, depths = out.rgb.clamp(0, 1), out.depth[:, 0]
    good = photometric_reprojection_loss(images, depths, cameras.viewmats, cameras.Ks)
    bad = photometric_reprojection_loss(images[[0, 2, 1, 3]], depths, cameras.viewmats, cameras.Ks)
    # Not exactly 0: expected depth blends across silhouettes and 48-px views resample sharp splats.
    assert float(good.mean) < 0.06 and (good.valid_fraction > 0.3).all()
    assert float(bad.mean) > 3 * float(good.mean)


def test_identity_warp_is_exact():
    images, depths, viewmats, Ks = plane_scene(2)
    warp = warp_view(images[:1], depths[:1], depths[:1], viewmats[:1], viewmats[:1], Ks[:1], Ks[:1])
    assert warp.mask.all()
    torch.testing.assert_close(warp.warped, images[:1], atol=1e-4, rtol=0)
    torch.testing.assert_close(warp.depth_in_b, depths[:1], atol=1e-4, rtol=1e-4)


def test_pixels_without_depth_are_left_out():
    images, depths, viewmats, Ks = plane_scene(2)
    holed = depths.clone()
    holed[:, :, : W // 2] = 0  # no surface in the left half of every view (e.g. an empty rendered background)
    warp = warp_view(images[1:], holed[:1], holed[1:], viewmats[:1], viewmats[1:], Ks[:1], Ks[1:])
    assert not warp.mask[0, :, : W // 2].any()
    assert warp.mask[0, :, W // 2:].float().mean() > 0.3
    # Garbage colours where there is no depth change nothing.
    garbage = images.clone()
    garbage[0, :, :, :4] = torch.rand(3, H, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(photometric_reprojection_loss(garbage, holed, viewmats, Ks).per_pair,
                               photometric_reprojection_loss(images, holed, viewmats, Ks).per_pair)


def test_depth_disagreement_empties_mask_and_gives_nan():
    images, depths, viewmats, Ks = plane_scene(3)
    wrong = depths.clone()
    wrong[1:] *= 2  # view 0's depth now disagrees with views 1 and 2 by 50%
    wrong[2] *= 2
    result = photometric_reprojection_loss(images, wrong, viewmats, Ks)
    assert result.valid_fraction.max() < 0.01
    assert torch.isnan(result.per_pair).all() and torch.isnan(result.mean)
    loose = photometric_reprojection_loss(images, depths * 1.03, viewmats, Ks, depth_rel_threshold=0.05)
    assert (loose.valid_fraction > 0.7).all()


def test_ssim_and_photometric_error_ranges():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=gen)
    assert float(ssim_dissimilarity(x, x).abs().max()) < 1e-5
    assert float(photometric_error(x, x).abs().max()) < 1e-5
    y = torch.rand(2, 3, 16, 16, generator=gen)
    err = photometric_error(x, y)
    assert err.shape == (2, 16, 16) and 0.2 < float(err.mean()) <= 1


def test_pixel_grid_uses_pixel_centres():
    grid = pixel_grid(2, 3)
    assert grid.shape == (2, 3, 2)
    assert grid[0, 0].tolist() == [0.5, 0.5] and grid[1, 2].tolist() == [2.5, 1.5]


def test_bad_shapes_and_threshold_are_refused():
    images, depths, viewmats, Ks = plane_scene(2)
    with pytest.raises(ValueError, match="depths"):
        photometric_reprojection_loss(images, depths[:, :-1], viewmats, Ks)
    with pytest.raises(ValueError, match="images"):
        photometric_reprojection_loss(images[:1], depths[:1], viewmats[:1], Ks[:1])
    with pytest.raises(ValueError, match="depth_rel_threshold"):
        photometric_reprojection_loss(images, depths, viewmats, Ks, depth_rel_threshold=0)

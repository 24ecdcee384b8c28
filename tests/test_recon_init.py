"""Initial Gaussians: kNN distances, SfM seeding, random frustum seeding (rl3dedit.recon.init)."""

import math

import pytest
import torch

from rl3dedit.recon import init as recon_init
from rl3dedit.recon import knn_distances, scene_extent
from rl3dedit.scene import SH_C0, Cameras, intrinsics_from_fov, look_at_viewmats


def _cameras(count: int = 4, size: int = 16) -> Cameras:
    angles = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count)
    eyes = torch.stack([2 * angles.cos(), 2 * angles.sin(), torch.full_like(angles, 1.0)], dim=1)
    viewmats = look_at_viewmats(eyes, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    Ks = intrinsics_from_fov(60.0, size, size).expand(count, 3, 3)
    return Cameras(viewmats.float(), Ks.float().clone(), size, size)


def test_knn_matches_brute_force_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    points = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    full = torch.cdist(points, points) + torch.diag(torch.full((300,), math.inf))
    expected = full.topk(3, dim=1, largest=False).values
    monkeypatch.setattr(recon_init, "_KNN_CHUNK_ELEMENTS", 300 * 7)  # 7 query rows per chunk
    assert torch.allclose(knn_distances(points, 3), expected, atol=1e-5)


def test_knn_counts_duplicates_and_rejects_bad_input() -> None:
    points = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert knn_distances(points, 1)[:, 0].tolist() == [0.0, 0.0, 1.0]
    assert knn_distances(points, 5).shape == (3, 2)
    with pytest.raises(ValueError, match=r"points must be \(P, 3\)"):
        knn_distances(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least 2 points"):
        knn_distances(torch.zeros(1, 3))


def test_init_scene_scales_colours_and_opacity() -> None:
    points = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.3]])
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]])
    scene = recon_init.init_scene(points, colors, sh_degree=1, init_opacity=0.1, init_scale=2.0,
                                  generator=torch.Generator().manual_seed(0))
    expected_first = 2.0 * (0.1 + 0.2 + 0.3) / 3
    assert torch.allclose(scene.scales[0], torch.full((3,), expected_first), rtol=1e-5)
    assert torch.allclose(scene.opacities, torch.full((4,), 0.1), atol=1e-6)
    assert torch.allclose(0.5 + SH_C0 * scene.sh_dc, colors, atol=1e-6)
    assert scene.sh_rest.shape == (4, 3, 3) and scene.sh_rest.abs().sum() == 0
    assert torch.allclose(scene.rotations.norm(dim=1), torch.ones(4))


def test_random_points_lie_in_front_of_cameras_and_project_inside() -> None:
    cameras = _cameras()
    generator = torch.Generator().manual_seed(0)
    points, colors = recon_init.initial_points(None, None, cameras, max_points=10, random_points=500, generator=generator)
    assert points.shape == (500, 3) and colors.shape == (500, 3)
    cam = torch.einsum("vij,nj->vni", cameras.viewmats[:, :3, :3], points) + cameras.viewmats[:, None, :3, 3]
    pix = torch.einsum("vij,vnj->vni", cameras.Ks, cam)
    u, v = pix[..., 0] / pix[..., 2], pix[..., 1] / pix[..., 2]
    inside = (cam[..., 2] > 0) & (u >= 0) & (u <= 16) & (v >= 0) & (v <= 16)
    assert inside.any(dim=0).all(), "every random point is seen by at least one camera"
    assert scene_extent(cameras) == pytest.approx(1.1 * 2.0, rel=1e-5)


def test_sfm_points_are_subsampled_reproducibly() -> None:
    points, colors = torch.randn(50, 3), torch.rand(50, 3)
    kwargs = dict(max_points=20, random_points=5)
    a, _ = recon_init.initial_points(points, colors, _cameras(), generator=torch.Generator().manual_seed(3), **kwargs)
    b, _ = recon_init.initial_points(points, colors, _cameras(), generator=torch.Generator().manual_seed(3), **kwargs)
    assert a.shape == (20, 3) and torch.equal(a, b)

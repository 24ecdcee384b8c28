"""`render` / `rasterize` contract: shapes, occlusion, background, expected depth, SH view colour, errors."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.special
import torch

from rl3dedit.render import RenderOutput, rasterize, render
from rl3dedit.scene import Cameras, GaussianScene, rgb_to_sh_dc


def _scene(means, rgb, opacity=0.999, log_scale=-1.0, sh_rest=None) -> GaussianScene:
    means = torch.as_tensor(means, dtype=torch.float32)
    n = means.shape[0]
    return GaussianScene(
        means=means,
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        log_scales=torch.full((n, 3), log_scale),
        opacity_logits=torch.full((n,), math.log(opacity / (1 - opacity))),
        sh_dc=rgb_to_sh_dc(torch.as_tensor(rgb, dtype=torch.float32).reshape(n, 3)),
        sh_rest=torch.zeros(n, 0, 3) if sh_rest is None else sh_rest,
    )


def _front_camera(size: int = 32, num_views: int = 1) -> Cameras:
    K = torch.tensor([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]])
    return Cameras(torch.eye(4).repeat(num_views, 1, 1), K.repeat(num_views, 1, 1), size, size)


def _ring_cameras(num_views: int, size: int) -> Cameras:
    """Cameras on a circle of radius 3 looking at the origin (OpenCV axes, y down)."""
    viewmats = []
    for i in range(num_views):
        angle = 2 * math.pi * i / num_views
        centre = torch.tensor([3 * math.sin(angle), 0.0, -3 * math.cos(angle)])
        forward = -centre / centre.norm()
        right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward)
        rot = torch.stack([right, torch.linalg.cross(forward, right), forward])
        vm = torch.eye(4)
        vm[:3, :3], vm[:3, 3] = rot, -rot @ centre
        viewmats.append(vm)
    K = torch.tensor([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]])
    return Cameras(torch.stack(viewmats), K.repeat(num_views, 1, 1), size, size)


def test_render_shapes_and_backend() -> None:
    gen = torch.Generator().manual_seed(0)
    n = 200
    scene = GaussianScene(torch.randn(n, 3, generator=gen) * 0.4, torch.randn(n, 4, generator=gen),
                          torch.full((n, 3), -2.5), torch.zeros(n), torch.randn(n, 3, generator=gen),
                          torch.randn(n, 15, 3, generator=gen) * 0.1)
    out = render(scene, _ring_cameras(3, 24), background=(1.0, 1.0, 1.0))
    assert isinstance(out, RenderOutput) and out.backend == "torch"
    assert out.rgb.shape == (3, 3, 24, 24) and out.depth.shape == (3, 1, 24, 24) and out.alpha.shape == (3, 1, 24, 24)
    assert out.means2d.shape == (3, n, 2) and out.radii.shape == (3, n) and out.conics.shape == (3, n, 3)
    assert out.depths.shape == (3, n) and (out.width, out.height) == (24, 24)
    assert 0.1 < float(out.alpha.mean()) < 1.0
    assert render(scene, _ring_cameras(3, 24), mode="RGB").depth is None
    assert render(scene, _ring_cameras(3, 24), mode="ED").rgb is None


def test_batch_of_views_equals_single_views() -> None:
    gen = torch.Generator().manual_seed(1)
    n = 100
    scene = GaussianScene(torch.randn(n, 3, generator=gen) * 0.4, torch.randn(n, 4, generator=gen),
                          torch.full((n, 3), -2.0), torch.zeros(n), torch.randn(n, 3, generator=gen),
                          torch.randn(n, 3, 3, generator=gen) * 0.2)
    cameras = _ring_cameras(3, 20)
    batch = render(scene, cameras)
    for v in range(3):
        single = render(scene, cameras[v])
        torch.testing.assert_close(batch.rgb[v], single.rgb[0])
        torch.testing.assert_close(batch.depth[v], single.depth[0])


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_near_gaussian_occludes_far_one_in_any_input_order(order: tuple[int, int]) -> None:
    means = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 4.0]])[list(order)]
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])[list(order)]
    out = render(_scene(means, rgb, log_scale=0.0), _front_camera())
    centre = out.rgb[0, :, 16, 16]
    assert centre[0] > 0.98 and centre[2] < 0.02
    assert float(out.depth[0, 0, 16, 16]) == pytest.approx(2.0, abs=0.05)


def test_empty_scene_and_culled_gaussians_show_the_background() -> None:
    bg = (0.2, 0.5, 0.9)
    empty = _scene(torch.zeros(0, 3), torch.zeros(0, 3))
    behind = _scene([[0.0, 0.0, -2.0]], [[1.0, 0.0, 0.0]])  # behind the camera: culled
    for scene in (empty, behind):
        out = render(scene, _front_camera(16, num_views=2), background=bg)
        assert torch.equal(out.alpha, torch.zeros(2, 1, 16, 16))
        assert torch.allclose(out.rgb, torch.tensor(bg).reshape(1, 3, 1, 1).expand(2, 3, 16, 16))
        assert torch.equal(out.depth, torch.zeros(2, 1, 16, 16))
    assert torch.equal(render(empty, _front_camera(8)).rgb, torch.zeros(1, 3, 8, 8))  # default background black


def test_expected_depth_is_the_gaussian_depth_and_zero_outside() -> None:
    z = 3.0
    out = render(_scene([[0.1, -0.1, z]], [[0.5, 0.5, 0.5]], log_scale=-2.0), _front_camera(32))
    covered = out.alpha[0, 0] > 0
    assert 10 < int(covered.sum()) < 32 * 32
    torch.testing.assert_close(out.depth[0, 0][covered], torch.full((int(covered.sum()),), z))
    assert torch.equal(out.depth[0, 0][~covered], torch.zeros(int((~covered).sum())))


def _inria_sh_reference(direction: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Colour from complex SH (scipy): sqrt(2) Im Y_l^|m| (m < 0), Y_l^0, sqrt(2) Re Y_l^m (m > 0), + 0.5."""
    polar, azimuth = np.arccos(direction[2]), np.arctan2(direction[1], direction[0])
    basis = []
    for l in range(4):
        for m in range(-l, l + 1):
            y = scipy.special.sph_harm_y(l, abs(m), polar, azimuth)
            basis.append(np.sqrt(2) * y.imag if m < 0 else (y.real if m == 0 else np.sqrt(2) * y.real))
    return np.maximum(np.array(basis) @ coeffs + 0.5, 0.0)


@pytest.mark.parametrize("sh_degree", [1, 2, 3])
def test_rendered_colour_follows_view_dependent_sh(sh_degree: int) -> None:
    gen = torch.Generator().manual_seed(sh_degree)
    centre = torch.tensor([[0.3, -0.2, 0.1]])
    scene = _scene(centre, [[0.4, 0.5, 0.6]], opacity=0.5, log_scale=-1.5,
                   sh_rest=torch.randn(1, 15, 3, generator=gen) * 0.3)
    cameras = _ring_cameras(1, 33)
    cam_centre = cameras.centers[0]
    # Look straight at the Gaussian so its centre lands on the centre of a pixel.
    forward = (centre[0] - cam_centre) / (centre[0] - cam_centre).norm()
    right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward)
    right = right / right.norm()
    rot = torch.stack([right, torch.linalg.cross(forward, right), forward])
    viewmat = torch.eye(4)
    viewmat[:3, :3], viewmat[:3, 3] = rot, -rot @ cam_centre
    cameras = Cameras(viewmat[None], cameras.Ks, 33, 33)
    out = render(scene, cameras, mode="RGB", sh_degree=sh_degree)
    direction = forward.double().numpy()
    coeffs = scene.sh_coeffs[0].double().numpy().copy()
    coeffs[(sh_degree + 1) ** 2 :] = 0.0
    expected = 0.5 * _inria_sh_reference(direction, coeffs)  # opacity 0.5, black background
    np.testing.assert_allclose(out.rgb[0, :, 16, 16].double().numpy(), expected, atol=1e-5)


def test_means2d_gradient_is_retainable_for_densification() -> None:
    scene = _scene([[0.0, 0.0, 2.0], [0.3, 0.1, 3.0]], [[1.0, 0.2, 0.1], [0.1, 0.9, 0.3]], opacity=0.7, log_scale=-2.0)
    scene.means.requires_grad_(True)
    out = render(scene, _front_camera(16))
    out.means2d.retain_grad()
    (out.rgb * torch.linspace(0, 1, 16)).sum().backward()
    assert out.means2d.grad.shape == (1, 2, 2)
    assert out.means2d.grad.abs().sum() > 0 and scene.means.grad.abs().sum() > 0


def test_bad_inputs_get_clear_errors() -> None:
    scene = _scene([[0.0, 0.0, 2.0]], [[1.0, 0.0, 0.0]])
    cams = _front_camera(8)
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        render(scene, cams, backend="gsplat")
    with pytest.raises(ValueError, match="mode must be"):
        render(scene, cams, mode="RGB+D")
    with pytest.raises(ValueError, match="background has shape"):
        render(scene, cams, background=torch.ones(4))
    with pytest.raises(ValueError, match="sh_degree=2"):
        render(scene, cams, sh_degree=2)
    args = [scene.means, scene.quats, scene.scales, scene.opacities, torch.ones(1, 3), cams.viewmats, cams.Ks, 8, 8]
    with pytest.raises(ValueError, match="quats has shape"):
        rasterize(*args[:1], torch.ones(2, 4), *args[2:])
    with pytest.raises(ValueError, match="colors has shape"):
        rasterize(*args[:4], torch.ones(1, 3), *args[5:], sh_degree=0)


def test_render_images_is_clamped_gradient_free_and_chunk_invariant() -> None:
    from rl3dedit.render import render_images
    from rl3dedit.synthetic import make_synthetic_scene
    from rl3dedit.views import orbit_cameras

    scene = make_synthetic_scene(300, seed=1)
    scene.sh_dc.requires_grad_(True)
    cameras = orbit_cameras(5, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=24, height=16, fov_deg=50.0)
    whole = render_images(scene, cameras, (1.0, 1.0, 1.0))
    assert whole.shape == (5, 3, 16, 24) and not whole.requires_grad
    assert whole.min() >= 0 and whole.max() <= 1
    reference = render(scene, cameras, mode="RGB", background=(1.0, 1.0, 1.0)).rgb.detach().clamp(0, 1)
    torch.testing.assert_close(whole, reference)
    torch.testing.assert_close(render_images(scene, cameras, (1.0, 1.0, 1.0), chunk_size=2), whole)


def test_chunked_render_equals_one_call_with_per_view_backgrounds() -> None:
    from rl3dedit.render import render_images
    from rl3dedit.render.config import RenderConfig
    from rl3dedit.synthetic import make_synthetic_scene
    from rl3dedit.views import orbit_cameras

    scene = make_synthetic_scene(200, seed=2)
    cameras = orbit_cameras(5, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=16, height=16, fov_deg=50.0)
    backgrounds = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    whole = render(scene, cameras, mode="RGB+ED", background=backgrounds)
    chunked = render(scene, cameras, mode="RGB+ED", background=backgrounds, chunk_size=2)
    for name in ("rgb", "depth", "alpha", "means2d", "radii", "depths", "conics"):
        torch.testing.assert_close(getattr(chunked, name), getattr(whole, name), msg=name)
    torch.testing.assert_close(render_images(scene, cameras, backgrounds, chunk_size=2), whole.rgb.clamp(0, 1))
    assert RenderConfig().chunk_size == inspect.signature(render_images).parameters["chunk_size"].default
    with pytest.raises(ValueError, match="chunk_size"):
        render(scene, cameras, chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size"):
        RenderConfig(chunk_size=0)

"""The synthetic scene and its orbit capture."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_capture, make_synthetic_scene


def test_scene_is_deterministic_and_sized():
    a, b = make_synthetic_scene(num_gaussians=300, seed=3), make_synthetic_scene(num_gaussians=300, seed=3)
    c = make_synthetic_scene(num_gaussians=300, seed=4)
    assert a.num_gaussians == 300 and a.sh_degree == 0
    assert all(torch.equal(x, y) for x, y in zip(a.parameters().values(), b.parameters().values()))
    assert not torch.equal(a.means, c.means)
    assert a.means[:, 2].min() >= -1e-6 and a.means[:, :2].norm(dim=1).max() <= 1.31  # on or above the disc
    colors = (0.5 + 0.2820948 * a.sh_dc).clamp(0, 1)
    assert colors.std(0).min() > 0.1  # colourful, not grey
    assert make_synthetic_scene(num_gaussians=100, sh_degree=1).sh_rest.shape == (100, 3, 3)
    with pytest.raises(ValueError, match="sh_degree must be 0 or 1"):
        make_synthetic_scene(sh_degree=2)


def test_capture_orbits_and_sees_the_object():
    scene, capture = make_synthetic_capture(num_views=4, size=24, seed=0, num_gaussians=300)
    assert capture.images.shape == (4, 3, 24, 24)
    assert capture.images.min() >= 0 and capture.images.max() <= 1
    centre = capture.images[:, :, 9:15, 9:15].mean((2, 3))
    assert ((centre - 1.0).abs().amax(1) > 0.2).all()  # the object, not the white background, is in the middle
    target = torch.tensor(SYNTHETIC_TARGET)
    distances = (capture.cameras.centers - target).norm(dim=1)
    torch.testing.assert_close(distances, torch.full((4,), 2.7), atol=1e-4, rtol=0)
    assert capture.points.shape == (300, 3) and capture.point_colors.shape == (300, 3)
    assert torch.isin(capture.points, scene.means).all()

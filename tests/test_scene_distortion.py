"""OpenCV distortion and torch image undistortion."""

from __future__ import annotations

import torch

from rl3dedit.scene.capture import undistort_images
from rl3dedit.scene.distortion import distort_normalized


def _blob_image(h: int, w: int, centre_uv: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    vs, us = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    blob = torch.exp(-((us - centre_uv[0]) ** 2 + (vs - centre_uv[1]) ** 2) / (2 * sigma**2))
    return blob.expand(3, h, w).clone()


def _centroid(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[1:]
    vs, us = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    weight = image[0] / image[0].sum()
    return torch.stack([(weight * us).sum(), (weight * vs).sum()])


def test_zero_distortion_is_identity():
    image = torch.rand(2, 3, 10, 12)
    K = torch.tensor([[20.0, 0, 6], [0, 20.0, 5], [0, 0, 1]]).expand(2, 3, 3)
    torch.testing.assert_close(undistort_images(image, K, torch.zeros(2, 4)), image, atol=1e-5, rtol=0)


def test_undistortion_moves_a_feature_to_its_pinhole_position():
    h = w = 96
    K = torch.tensor([[80.0, 0, 50.0], [0, 76.0, 45.0], [0, 0, 1]])
    coeffs = torch.tensor([0.35, 0.1, 0.02, -0.015])
    pinhole_xy = torch.tensor([0.45, -0.4])
    distorted_xy = distort_normalized(pinhole_xy, coeffs)
    to_px = lambda xy: torch.stack([K[0, 0] * xy[0] + K[0, 2], K[1, 1] * xy[1] + K[1, 2]])  # noqa: E731
    distorted = _blob_image(h, w, to_px(distorted_xy))[None]
    assert (to_px(distorted_xy) - to_px(pinhole_xy)).norm() > 3.0  # the distortion is not negligible here
    undistorted = undistort_images(distorted, K[None], coeffs[None])
    assert (_centroid(undistorted[0]) - to_px(pinhole_xy)).norm() < 0.25


def test_distortion_formula_tangential_terms():
    xy = torch.tensor([0.3, 0.2], dtype=torch.float64)
    k1, k2, p1, p2 = 0.1, 0.02, 0.003, -0.004
    r2 = 0.13
    expected_x = 0.3 * (1 + k1 * r2 + k2 * r2**2) + 2 * p1 * 0.06 + p2 * (r2 + 2 * 0.09)
    expected_y = 0.2 * (1 + k1 * r2 + k2 * r2**2) + p1 * (r2 + 2 * 0.04) + 2 * p2 * 0.06
    out = distort_normalized(xy, torch.tensor([k1, k2, p1, p2], dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([expected_x, expected_y], dtype=torch.float64))

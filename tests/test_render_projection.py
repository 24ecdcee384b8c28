"""EWA projection: covariance from wxyz quaternions, 2D covariance = numerical Jacobian, culling."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from rl3dedit.render._projection import covariance_3d, project_gaussians
from rl3dedit.scene.pose import quaternion_to_matrix


def test_quaternion_to_matrix_matches_scipy_with_wxyz_order() -> None:
    gen = torch.Generator().manual_seed(0)
    quats = torch.randn(5, 4, generator=gen, dtype=torch.float64) * 3  # unnormalised on purpose
    xyzw = quats[:, [1, 2, 3, 0]].numpy()
    np.testing.assert_allclose(quaternion_to_matrix(quats).numpy(), Rotation.from_quat(xyzw).as_matrix(), atol=1e-12)


def test_covariance_of_a_90_degree_turn_swaps_axes() -> None:
    half = math.sqrt(0.5)
    cov = covariance_3d(torch.tensor([[half, 0.0, 0.0, half]], dtype=torch.float64),  # 90 degrees about z
                        torch.tensor([[2.0, 0.5, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(cov[0], torch.diag(torch.tensor([0.25, 4.0, 1.0], dtype=torch.float64)))


def _pinhole(point: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    cam = viewmat[:3, :3] @ point + viewmat[:3, 3]
    return torch.stack([K[0, 0] * cam[0] / cam[2] + K[0, 2], K[1, 1] * cam[1] / cam[2] + K[1, 2]])


def test_screen_covariance_is_the_linearised_projection() -> None:
    gen = torch.Generator().manual_seed(1)
    means = torch.tensor([[0.3, -0.2, 0.4]], dtype=torch.float64)
    covars = covariance_3d(torch.randn(1, 4, generator=gen, dtype=torch.float64),
                           torch.tensor([[0.1, 0.05, 0.2]], dtype=torch.float64))
    rot = torch.tensor(Rotation.from_euler("xyz", [0.2, -0.3, 0.1]).as_matrix())
    viewmat = torch.eye(4, dtype=torch.float64)
    viewmat[:3, :3], viewmat[:3, 3] = rot, torch.tensor([0.1, 0.0, 3.0], dtype=torch.float64)
    K = torch.tensor([[50.0, 0.0, 31.0], [0.0, 55.0, 29.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    proj = project_gaussians(means, covars, viewmat[None], K[None], 64, 64, 0.01, 1e10, 0.3, 0.0)
    jac = torch.autograd.functional.jacobian(lambda p: _pinhole(p, viewmat, K), means[0])  # (2, 3)
    cov2d = jac @ covars[0] @ jac.T + 0.3 * torch.eye(2, dtype=torch.float64)
    a, b, c = proj.conics[0, 0]
    torch.testing.assert_close(torch.tensor([[a, b], [b, c]]), torch.linalg.inv(cov2d))
    torch.testing.assert_close(proj.means2d[0, 0], _pinhole(means[0], viewmat, K))
    assert bool(proj.visible[0, 0]) and float(proj.depths[0, 0]) > 0


def test_culling_near_plane_and_off_screen() -> None:
    means = torch.tensor([[0.0, 0.0, 0.005], [0.0, 0.0, -1.0], [100.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    covars = covariance_3d(torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(4, 1), torch.full((4, 3), 0.01))
    K = torch.tensor([[[32.0, 0.0, 16.0], [0.0, 32.0, 16.0], [0.0, 0.0, 1.0]]])
    proj = project_gaussians(means, covars, torch.eye(4)[None], K, 32, 32, 0.01, 1e10, 0.3, 0.0)
    assert proj.visible[0].tolist() == [False, False, False, True]
    assert proj.radii[0, :3].tolist() == [0, 0, 0] and int(proj.radii[0, 3]) > 0
    assert torch.isfinite(proj.conics).all() and torch.isfinite(proj.means2d).all()

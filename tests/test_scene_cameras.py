"""Camera helpers: look-at view matrices (OpenCV axes), intrinsics from a field of view, camera records."""

from __future__ import annotations

import math

import pytest
import torch

from rl3dedit.scene import CameraRecords, Cameras, intrinsics_from_fov, look_at_viewmats


def _project(viewmats: torch.Tensor, K: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    cam = viewmats[:, :3, :3] @ point + viewmats[:, :3, 3]
    return torch.stack([K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2], K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2], cam[:, 2]], 1)


def test_look_at_projects_target_to_centre_and_up_to_image_top():
    eyes = torch.tensor([[3.0, 0.0, 1.0], [0.0, -2.0, 0.5], [-1.0, 1.0, 2.0]], dtype=torch.float64)
    target = torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    viewmats = look_at_viewmats(eyes, target, up)
    K = intrinsics_from_fov(60.0, 64, 48).double()
    uvz = _project(viewmats, K, target)
    torch.testing.assert_close(uvz[:, :2], torch.tensor([[32.0, 24.0]] * 3, dtype=torch.float64))
    assert (uvz[:, 2] > 0).all()  # in front: +z forward
    above = _project(viewmats, K, target + 0.1 * up)
    assert (above[:, 1] < 24.0).all()  # world up is image up: OpenCV y points down
    rot = viewmats[:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    assert torch.allclose(torch.linalg.det(rot), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(Cameras(viewmats, K.expand(3, 3, 3), 64, 48).centers, eyes)


def test_look_at_right_hand_side():
    # Looking along +y with z up, world +x must appear on the right (u > cx).
    viewmats = look_at_viewmats(torch.tensor([[0.0, -5.0, 0.0]]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    uvz = _project(viewmats, intrinsics_from_fov(90.0, 100, 100), torch.tensor([1.0, 0.0, 0.0]))
    assert uvz[0, 0] > 50.0


def test_look_at_errors():
    with pytest.raises(ValueError, match="parallel to `up`"):
        look_at_viewmats(torch.tensor([[0.0, 0.0, 5.0]]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"eyes has shape \(3,\)"):
        look_at_viewmats(torch.zeros(3), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))


def test_intrinsics_from_fov():
    K = intrinsics_from_fov(90.0, 200, 100)
    assert K[0, 0] == pytest.approx(100.0) and K[1, 1] == pytest.approx(100.0)
    assert (K[0, 2], K[1, 2]) == (100.0, 50.0)
    fov = 2 * math.degrees(math.atan(0.5 * 64 / float(intrinsics_from_fov(40.0, 64, 64)[0, 0])))
    assert fov == pytest.approx(40.0)
    with pytest.raises(ValueError, match="fov_x_deg"):
        intrinsics_from_fov(180.0, 10, 10)


def test_camera_records_validation():
    cams = Cameras(torch.eye(4).expand(2, 4, 4).clone(), torch.eye(3).expand(2, 3, 3).clone(), 8, 8)
    assert not CameraRecords(cams, torch.zeros(2, 4)).is_distorted
    assert CameraRecords(cams, torch.tensor([[0.1, 0, 0, 0], [0, 0, 0, 0]])).is_distorted
    with pytest.raises(ValueError, match=r"distortion has shape \(3, 4\), expected \(2, 4\)"):
        CameraRecords(cams, torch.zeros(3, 4))

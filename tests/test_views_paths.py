"""orbit_cameras and turntable_path."""

from __future__ import annotations

import math

import pytest
import torch

from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.views import orbit_cameras, turntable_path
from rl3dedit.views.paths import capture_frame


def test_orbit_geometry():
    cams = orbit_cameras(8, center=(1.0, 2.0, 0.5), radius=3.0, elevation_deg=30.0, width=40, height=30, fov_deg=60.0)
    assert len(cams) == 8 and (cams.width, cams.height) == (40, 30)
    offsets = cams.centers - torch.tensor([1.0, 2.0, 0.5])
    torch.testing.assert_close(offsets.norm(dim=1), torch.full((8,), 3.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(offsets[:, 2], torch.full((8,), 1.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(offsets[0], torch.tensor([3 * math.cos(math.radians(30)), 0.0, 1.5]), atol=1e-5, rtol=0)
    assert offsets[2, 1] > 0  # counter-clockwise seen from +z
    centre = torch.tensor([1.0, 2.0, 0.5])
    cam = centre @ cams.viewmats[:, :3, :3].transpose(1, 2) + cams.viewmats[:, :3, 3]
    torch.testing.assert_close(cam[:, :2], torch.zeros(8, 2), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="radius > 0"):
        orbit_cameras(4, center=(0, 0, 0), radius=0.0, elevation_deg=0, width=8, height=8, fov_deg=40)


def test_turntable_of_a_loop_is_a_full_turn():
    cams = orbit_cameras(12, center=(0.0, 0.0, 0.3), radius=2.0, elevation_deg=20.0, width=32, height=24, fov_deg=45.0)
    path = turntable_path(cams, 30)
    assert len(path) == 30 and (path.width, path.height) == (32, 24)
    frame = capture_frame(path)
    torch.testing.assert_close(frame.focus, torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64), atol=1e-4, rtol=0)
    azimuth = torch.atan2(path.centers[:, 1], path.centers[:, 0])
    steps = torch.remainder(azimuth[1:] - azimuth[:-1], 2 * math.pi)
    torch.testing.assert_close(steps, torch.full((29,), 2 * math.pi / 30), atol=1e-4, rtol=0)
    torch.testing.assert_close(path.Ks[0], cams.Ks[0])


def test_turntable_of_an_arc_stays_on_the_arc():
    angles = torch.deg2rad(torch.linspace(-40, 40, 9, dtype=torch.float64))
    eyes = torch.stack([3 * angles.sin(), -3 * angles.cos(), torch.full_like(angles, 0.4)], dim=1)
    viewmats = look_at_viewmats(eyes, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    cams = Cameras(viewmats.float(), intrinsics_from_fov(50, 16, 16).expand(9, 3, 3).clone(), 16, 16)
    path = turntable_path(cams, 20)
    heading = torch.rad2deg(torch.atan2(path.centers[:, 0], -path.centers[:, 1]))
    assert heading.min() > -41 and heading.max() < 41  # never swings round to the unseen back
    assert heading.max() - heading.min() > 70
    torch.testing.assert_close(heading[1], heading[-1], atol=1e-3, rtol=0)  # ping-pong: loops back smoothly


def test_turntable_from_bounds():
    bounds = torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 1.0]])
    path = turntable_path(bounds, 6, width=24, height=24, fov_deg=40.0)
    assert len(path) == 6 and path.width == 24
    distance = (path.centers - torch.tensor([0.0, 0.0, 0.5])).norm(dim=1)
    assert (distance > 1.5 / math.sin(math.radians(20))).all()  # the bounding sphere fits the view
    with pytest.raises(ValueError, match=r"\(2, 3\) bounds"):
        turntable_path(torch.zeros(3), 4)

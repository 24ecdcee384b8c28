"""select_views: determinism, spread, neighbour order, repetition; capture_frame."""

from __future__ import annotations

import logging
import math

import torch

from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.views import orbit_cameras, select_views
from rl3dedit.views.paths import capture_frame


def _shuffled_orbit(n: int, seed: int = 0) -> tuple[Cameras, torch.Tensor]:
    cams = orbit_cameras(n, center=(0.0, 0.0, 0.3), radius=3.0, elevation_deg=25.0, width=32, height=32, fov_deg=50.0)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    azimuth = torch.arange(n, dtype=torch.float64)[perm] * (2 * math.pi / n)
    return cams[perm], azimuth


def _arc(n: int) -> tuple[Cameras, torch.Tensor]:
    """A forward-facing arc of 100 degrees, cameras listed in a scrambled order."""
    angles = torch.linspace(-50, 50, n, dtype=torch.float64)[torch.randperm(n, generator=torch.Generator().manual_seed(1))]
    rad = torch.deg2rad(angles)
    eyes = torch.stack([4 * rad.sin(), -4 * rad.cos(), torch.full_like(rad, 0.5)], dim=1)
    viewmats = look_at_viewmats(eyes, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    return Cameras(viewmats.float(), intrinsics_from_fov(50, 32, 32).expand(n, 3, 3).clone(), 32, 32), angles


def _angular_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = (a - b).abs() % (2 * math.pi)
    return torch.minimum(d, 2 * math.pi - d)


def test_orbit_selection_is_deterministic_spread_and_adjacent():
    cams, azimuth = _shuffled_orbit(36)
    picks = select_views(cams, 9)
    assert picks == select_views(cams, 9) and len(set(picks)) == 9
    chosen = azimuth[picks]
    steps = _angular_gap(chosen[1:], chosen[:-1])
    # 36 cameras 10 degrees apart: 9 evenly spread views are 40 degrees apart, and each step goes to the next one
    # around the loop (a step to a non-neighbour would be at least 80 degrees).
    torch.testing.assert_close(steps, torch.full((8,), math.radians(40), dtype=torch.float64), atol=1e-6, rtol=0)


def test_arc_selection_follows_the_arc():
    cams, angles = _arc(40)
    picks = select_views(cams, 9)
    chosen = angles[picks]
    assert torch.all(chosen[1:] > chosen[:-1]) or torch.all(chosen[1:] < chosen[:-1])  # monotone along the arc
    assert float(chosen.max() - chosen.min()) > 95  # covers the whole arc, ends included
    assert float((chosen[1:] - chosen[:-1]).abs().max()) < 20


def test_fewer_cameras_repeat_with_a_warning(caplog):
    cams, angles = _arc(5)
    with caplog.at_level(logging.WARNING):
        picks = select_views(cams, 9)
    assert "repeating views" in caplog.text
    assert len(picks) == 9 and set(picks) == set(range(5))
    order = [p for i, p in enumerate(picks) if i == 0 or p != picks[i - 1]]
    assert len(order) == 5  # repeats sit next to each other
    chosen = angles[order]
    assert torch.all(chosen[1:] > chosen[:-1]) or torch.all(chosen[1:] < chosen[:-1])


def test_capture_frame_finds_the_focus():
    cams, _ = _shuffled_orbit(12)
    frame = capture_frame(cams)
    torch.testing.assert_close(frame.focus, torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64), atol=1e-4, rtol=0)
    assert abs(frame.radius - 3.0) < 1e-4
    assert float(frame.up @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)) > 0.9


def test_close_ups_are_skipped():
    ring = orbit_cameras(24, center=(0.0, 0.0, 0.0), radius=3.0, elevation_deg=20.0, width=32, height=32, fov_deg=50.0)
    close = orbit_cameras(6, center=(0.0, 0.0, 0.0), radius=1.0, elevation_deg=60.0, width=32, height=32, fov_deg=50.0)
    cams = Cameras(torch.cat([ring.viewmats, close.viewmats]), torch.cat([ring.Ks, close.Ks]), 32, 32)
    picks = select_views(cams, 9)
    assert len(set(picks)) == 9 and max(picks) < 24  # the close-ups (indices 24..29) add bearings but are skipped

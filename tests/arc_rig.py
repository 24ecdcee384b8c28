"""Shared test rig: a synthetic scene seen by cameras on a short arc, and its consistent renders."""

from __future__ import annotations

import torch

from rl3dedit.render import render
from rl3dedit.scene import Cameras, GaussianScene, intrinsics_from_fov, look_at_viewmats
from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

WHITE = (1.0, 1.0, 1.0)


def arc_cameras(num_views: int, size: int, step_deg: float = 8.0) -> Cameras:
    """`num_views` cameras `step_deg` apart on a circle of radius 2.4 around the synthetic target, 1.35 above it."""
    angles = torch.deg2rad(torch.arange(num_views) * step_deg)
    target = torch.tensor(SYNTHETIC_TARGET)
    eyes = target + torch.stack([2.4 * angles.cos(), 2.4 * angles.sin(), torch.full_like(angles, 1.35)], dim=1)
    return Cameras(look_at_viewmats(eyes, target, torch.tensor([0.0, 0.0, 1.0])),
                   intrinsics_from_fov(50.0, size, size).expand(num_views, 3, 3).clone(), size, size)


def render_white(scene: GaussianScene, cameras: Cameras) -> torch.Tensor:
    """(V, 3, H, W) renders in [0, 1] on a white background."""
    with torch.no_grad():
        return render(scene, cameras, mode="RGB", background=WHITE).rgb.clamp(0, 1)


def arc_rig(num_views: int, size: int, seed: int = 0) -> tuple[GaussianScene, Cameras, torch.Tensor]:
    """The synthetic scene of `seed`, the arc cameras, and the scene's consistent renders from them."""
    scene, cameras = make_synthetic_scene(seed=seed), arc_cameras(num_views, size)
    return scene, cameras, render_white(scene, cameras)

"""A small procedural scene and an orbiting capture of it, for tests, demos and the tiny presets.

This package sits above `scene`, `render` and `views` (it renders its capture with them), so data flows one way.

The world is z-up. The scene is a grey, sector-patterned ground disc of radius 1.3 in the z = 0 plane carrying five
coloured ellipsoids (a tall red one in the middle, green, blue, yellow and magenta ones around it), each a shell of
small Gaussians whose colour varies with height so that views have texture to match.
"""

from __future__ import annotations

import math

import torch

from rl3dedit.render import render_images
from rl3dedit.scene import SH_C0, Capture, GaussianScene, rgb_to_sh_dc
from rl3dedit.views import orbit_cameras

__all__ = ["SYNTHETIC_TARGET", "make_synthetic_capture", "make_synthetic_scene"]

SYNTHETIC_TARGET = (0.0, 0.0, 0.3)
"""The point the synthetic capture's cameras look at (the middle of the object group)."""

# (centre xyz, semi-axes xyz, rgb) of the coloured ellipsoids.
_BLOBS = (
    ((0.0, 0.0, 0.45), (0.25, 0.25, 0.45), (0.90, 0.15, 0.12)),
    ((0.65, 0.0, 0.2), (0.18, 0.18, 0.2), (0.15, 0.75, 0.20)),
    ((0.0, 0.65, 0.2), (0.2, 0.15, 0.2), (0.12, 0.30, 0.90)),
    ((-0.65, 0.0, 0.15), (0.15, 0.22, 0.15), (0.95, 0.85, 0.10)),
    ((0.0, -0.65, 0.25), (0.16, 0.16, 0.25), (0.85, 0.20, 0.80)),
)
_DISC_RADIUS = 1.3


def _ground(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Means (n, 3), log-scales (n, 3) and rgb (n, 3) of flat Gaussians covering the ground disc."""
    radius = _DISC_RADIUS * torch.rand(n, generator=generator).sqrt()
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    means = torch.stack([radius * angle.cos(), radius * angle.sin(), torch.zeros(n)], dim=1)
    sector = ((angle / (2 * math.pi) * 12).floor() + (radius / 0.35).floor()) % 2
    rgb = torch.where(sector[:, None] > 0, torch.tensor([0.78, 0.78, 0.74]), torch.tensor([0.42, 0.45, 0.52]))
    log_scales = torch.log(torch.tensor([0.07, 0.07, 0.006])).expand(n, 3).clone()
    return means, log_scales, rgb


def _blob(
    n: int, centre: tuple, axes: tuple, rgb: tuple, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussians on an ellipsoid shell; colour darkens toward the bottom and gets a stripe pattern."""
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=1)
    means = torch.tensor(centre) + direction * torch.tensor(axes)
    shade = 0.65 + 0.35 * (direction[:, 2:3] + 1) / 2
    stripe = 0.85 + 0.15 * torch.sign(torch.sin(6 * torch.atan2(direction[:, 1:2], direction[:, 0:1])))
    colors = (torch.tensor(rgb) * shade * stripe).clamp(0, 1)
    size = 0.5 * min(axes) * math.sqrt(4 * math.pi / max(n, 1))
    log_scales = torch.full((n, 3), math.log(max(size, 0.02)))
    return means, log_scales, colors


def make_synthetic_scene(num_gaussians: int = 1200, seed: int = 0, sh_degree: int = 0) -> GaussianScene:
    """A colourful object group on a ground disc (z-up), float32 on CPU.

    Args:
        num_gaussians: total count N (about 35% ground, the rest split over the five ellipsoids); at least 50.
        seed: the generator seed (same seed, same scene).
        sh_degree: 0 or 1; degree 1 adds small random view-dependent coefficients.
    """
    if num_gaussians < 50:
        raise ValueError(f"make_synthetic_scene: num_gaussians must be >= 50, got {num_gaussians}")
    if sh_degree not in (0, 1):
        raise ValueError(f"make_synthetic_scene: sh_degree must be 0 or 1, got {sh_degree}")
    generator = torch.Generator().manual_seed(seed)
    n_ground = int(0.35 * num_gaussians)
    per_blob = [(num_gaussians - n_ground) // len(_BLOBS)] * len(_BLOBS)
    per_blob[0] += num_gaussians - n_ground - sum(per_blob)
    parts = [_ground(n_ground, generator)] + [
        _blob(n, centre, axes, rgb, generator) for n, (centre, axes, rgb) in zip(per_blob, _BLOBS)
    ]
    means = torch.cat([p[0] for p in parts])
    log_scales = torch.cat([p[1] for p in parts])
    rgb = torch.cat([p[2] for p in parts])
    quats = torch.nn.functional.normalize(torch.randn(num_gaussians, 4, generator=generator), dim=1)
    quats[:n_ground] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # keep the ground splats flat in z
    opacity_logits = torch.full((num_gaussians,), 3.0)
    num_rest = (sh_degree + 1) ** 2 - 1
    sh_rest = 0.05 * torch.randn(num_gaussians, num_rest, 3, generator=generator)
    return GaussianScene(
        means=means.float(),
        quats=quats.float(),
        log_scales=log_scales.float(),
        opacity_logits=opacity_logits,
        sh_dc=rgb_to_sh_dc(rgb).float(),
        sh_rest=sh_rest.float(),
    )


def make_synthetic_capture(
    num_views: int = 24,
    size: int = 64,
    seed: int = 0,
    num_gaussians: int = 1200,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    backend: str = "auto",
) -> tuple[GaussianScene, Capture]:
    """The synthetic scene and a capture of it rendered by `rl3dedit.render.render_images` (`backend`) from an orbit.

    Returns:
        (scene, capture): cameras on a circle of radius 2.7 at 30 degrees elevation around `SYNTHETIC_TARGET`
        (z up, 50-degree field of view); capture.images (V, 3, size, size) in [0, 1] on `background`; capture.points are 400 of the
        Gaussian centres with their colours (an SfM-like seed); no render path (use `views.turntable_path`).
    """
    scene = make_synthetic_scene(num_gaussians=num_gaussians, seed=seed)
    cameras = orbit_cameras(
        num_views, center=SYNTHETIC_TARGET, radius=2.7, elevation_deg=30.0, width=size, height=size, fov_deg=50.0
    )
    images = render_images(scene, cameras, background, backend=backend).float()
    generator = torch.Generator().manual_seed(seed + 1)
    picks = torch.randperm(scene.num_gaussians, generator=generator)[: min(400, scene.num_gaussians)]
    colors = (0.5 + SH_C0 * scene.sh_dc[picks]).clamp(0, 1)
    capture = Capture(
        cameras=cameras, images=images, points=scene.means[picks].clone(), point_colors=colors, name=f"synthetic_{seed}"
    )
    return scene, capture

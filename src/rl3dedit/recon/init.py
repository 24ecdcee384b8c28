"""Initial Gaussians for a base fit: from SfM points, or at random inside the cameras' view frustums.

Follows gsplat's simple_trainer (https://github.com/nerfstudio-project/gsplat, examples/simple_trainer.py): one Gaussian per point, isotropic scale
= init_scale x the mean distance to the 3 nearest neighbours, identity-free random rotations, opacity
init_opacity, DC colour from the point colour, zero higher-order SH. The scene extent is gsplat's
`scene_scale`: 1.1 x the largest distance of a camera centre from the centres' mean.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

from rl3dedit.scene import Cameras, GaussianScene, rgb_to_sh_dc

logger = logging.getLogger(__name__)

_KNN_CHUNK_ELEMENTS = 1 << 24
"""Bound on query x reference distances held at once by `knn_distances` (64 MB in float32)."""


def knn_distances(points: Tensor, k: int = 3) -> Tensor:
    """Distances from each point to its k nearest other points, by chunked brute force.

    Args:
        points: (P, 3) positions, P >= 2.
        k: neighbours per point (clamped to P - 1).
    Returns:
        (P, k) Euclidean distances, ascending; duplicates of a point count as neighbours at distance 0.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"knn_distances: points must be (P, 3), got {tuple(points.shape)}")
    count = points.shape[0]
    if count < 2:
        raise ValueError(f"knn_distances: need at least 2 points, got {count}")
    k = min(k, count - 1)
    rows = max(1, _KNN_CHUNK_ELEMENTS // count)
    out = []
    for start in range(0, count, rows):
        query = points[start : start + rows]
        dist = torch.cdist(query, points)  # (rows, P)
        # Exclude the point itself (not its duplicates) by its index.
        index = torch.arange(start, start + query.shape[0], device=points.device)
        dist[torch.arange(query.shape[0], device=points.device), index] = math.inf
        out.append(dist.topk(k, dim=1, largest=False).values)
    return torch.cat(out)


def scene_extent(cameras: Cameras) -> float:
    """gsplat's scene scale: 1.1 x the largest distance of a camera centre from the mean centre (world units)."""
    centers = cameras.centers.double()
    extent = 1.1 * float((centers - centers.mean(0)).norm(dim=1).max())
    return extent if extent > 0 else 1.0


def random_frustum_points(cameras: Cameras, count: int, near: float, far: float, generator: torch.Generator) -> Tensor:
    """(count, 3) world points uniform in pixels and in depth [near, far] of randomly chosen cameras' frustums."""
    views = torch.randint(len(cameras), (count,), generator=generator)
    pixels = torch.rand(count, 2, generator=generator) * torch.tensor([cameras.width, cameras.height])
    depth = near + (far - near) * torch.rand(count, generator=generator)
    Ks = cameras.Ks.double()[views]
    x = (pixels[:, 0].double() - Ks[:, 0, 2]) / Ks[:, 0, 0]
    y = (pixels[:, 1].double() - Ks[:, 1, 2]) / Ks[:, 1, 1]
    cam = torch.stack([x, y, torch.ones_like(x)], dim=1) * depth.double()[:, None]  # OpenCV camera frame
    c2w = cameras.c2w.double()[views]
    return (torch.einsum("nij,nj->ni", c2w[:, :3, :3], cam) + c2w[:, :3, 3]).float()


def init_scene(
    points: Tensor,  # (P, 3)
    colors: Tensor,  # (P, 3) in [0, 1]
    *,
    sh_degree: int,
    init_opacity: float,
    init_scale: float,
    generator: torch.Generator,
) -> GaussianScene:
    """One Gaussian per point (gsplat simple_trainer's SfM initialisation), float32 on the points' device.

    Returns:
        GaussianScene with log_scales = log(init_scale x mean 3-NN distance), random unit quats (wxyz),
        opacity_logits = logit(init_opacity), sh_dc from `colors`, sh_rest zeros of degree `sh_degree`.
    """
    count = points.shape[0]
    distances = knn_distances(points.float(), 3).mean(1).clamp_min(1e-7)
    log_scales = torch.log(init_scale * distances)[:, None].repeat(1, 3)
    quats = torch.nn.functional.normalize(torch.randn(count, 4, generator=generator), dim=1).to(points.device)
    logit = math.log(init_opacity / (1.0 - init_opacity))
    return GaussianScene(
        means=points.float().clone(),
        quats=quats,
        log_scales=log_scales,
        opacity_logits=torch.full((count,), logit, device=points.device),
        sh_dc=rgb_to_sh_dc(colors.float().clamp(0, 1)),
        sh_rest=torch.zeros(count, (sh_degree + 1) ** 2 - 1, 3, device=points.device),
    )


def initial_points(
    points: Tensor | None,
    colors: Tensor | None,
    cameras: Cameras,
    *,
    max_points: int,
    random_points: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Seed points (P, 3) and colours (P, 3): SfM points (subsampled to `max_points`), else random in the frustums.

    Random points lie at depths 0.1-1.0 x the scene extent in front of the cameras with random colours,
    as gsplat's `init_type="random"` (which samples a cube of that size instead).
    """
    if points is not None and colors is not None and points.shape[0] >= 2:
        if points.shape[0] > max_points:
            keep = torch.randperm(points.shape[0], generator=generator)[:max_points]
            logger.info("subsampling %d SfM points to %d", points.shape[0], max_points)
            points, colors = points[keep], colors[keep]
        return points.float(), colors.float()
    extent = scene_extent(cameras)
    logger.info("no SfM points: placing %d random Gaussians in the cameras' view frustums", random_points)
    seeds = random_frustum_points(cameras, random_points, 0.1 * extent, extent, generator)
    return seeds, torch.rand(random_points, 3, generator=generator)

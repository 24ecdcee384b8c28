"""Depth-based view warping and the Monodepth2-style photometric reprojection loss (the paper's Ph-Loss).

Conventions: images (P, 3, H, W) in [0, 1]; depths are **z-depth** along the camera's forward axis (what VGGT's
depth head and a rasterizer's expected depth give), in the same units as the camera translations; `viewmats` are
world-to-camera OpenCV poses, `Ks` pixel intrinsics with pixel centres at integer + 0.5 (`scene/cameras.py`).

Ph-Loss (the paper's evaluation protocol, docs/references.md §6): warp view A into its neighbour B with A's depth and the cameras, keep
pixels whose reprojected depth agrees with B's own depth, |D_{A->B} - D_B| < tau, and average the per-pixel loss
0.85 (1 - SSIM) / 2 + 0.15 |I_A - I_{B->A}| (Monodepth2, Godard et al. 2019, Eq. 1) over the M - 1 adjacent pairs.

tau is not stated by the paper. We use a **relative** threshold, |D_{A->B} - D_B| < `depth_rel_threshold` * D_B,
default 0.05: invariant to the scene's unit (VGGT depth is up to scale), tight enough to drop occluded pixels
(an occluder sits in front by much more than 5% of the depth in object-centric captures) and loose enough for
bilinear depth sampling at edges and VGGT's depth noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rl3dedit.scene.pose import invert_pose, to_homogeneous

__all__ = [
    "DEFAULT_DEPTH_REL_THRESHOLD",
    "ViewWarp",
    "PhotometricResult",
    "pixel_grid",
    "unproject_depth",
    "warp_view",
    "ssim_dissimilarity",
    "photometric_error",
    "photometric_reprojection_loss",
]

DEFAULT_DEPTH_REL_THRESHOLD = 0.05
"""Default tau as a fraction of B's depth (see the module docstring for the reasoning)."""

SSIM_WEIGHT = 0.85
"""Monodepth2's alpha: weight of the SSIM term against L1 (Godard et al. 2019, Eq. 1)."""


def pixel_grid(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) pixel-centre coordinates (u, v) = (col + 0.5, row + 0.5)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def unproject_depth(depth: torch.Tensor, Ks: torch.Tensor) -> torch.Tensor:
    """Camera-frame points from z-depth: ((u - cx) d / fx, (v - cy) d / fy, d) (pinhole back-projection).

    Args:
        depth: (P, H, W) z-depth.
        Ks: (P, 3, 3) pixel intrinsics.

    Returns:
        (P, H, W, 3) points in each camera's OpenCV frame.
    """
    p, h, w = depth.shape
    uv = pixel_grid(h, w, device=depth.device, dtype=depth.dtype)
    fx, fy = Ks[:, 0, 0].view(p, 1, 1), Ks[:, 1, 1].view(p, 1, 1)
    cx, cy = Ks[:, 0, 2].view(p, 1, 1), Ks[:, 1, 2].view(p, 1, 1)
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


@dataclass
class ViewWarp:
    """View B resampled at view A's pixels.

    Fields:
        warped: (P, 3, H, W) B's image at the points A sees (the reconstruction of A from B).
        mask: (P, H, W) bool, valid pixels: in front of B, inside B's image, depths agree.
        depth_in_b: (P, H, W) D_{A->B}, z-depth of A's points in B's camera.
        depth_b: (P, H, W) D_B, B's own depth sampled at the same locations.
    """

    warped: torch.Tensor
    mask: torch.Tensor
    depth_in_b: torch.Tensor
    depth_b: torch.Tensor


def warp_view(
    image_b: torch.Tensor,  # (P, 3, H, W)
    depth_a: torch.Tensor,  # (P, H, W)
    depth_b: torch.Tensor,  # (P, H, W)
    viewmat_a: torch.Tensor,  # (P, 4, 4)
    viewmat_b: torch.Tensor,  # (P, 4, 4)
    K_a: torch.Tensor,  # (P, 3, 3)
    K_b: torch.Tensor,  # (P, 3, 3)
    *,
    depth_rel_threshold: float = DEFAULT_DEPTH_REL_THRESHOLD,
) -> ViewWarp:
    """Warp B into A's pixel grid: unproject A with its depth, move to B's frame, project, sample B bilinearly.

    The validity mask is 1[D_A > 0] * 1[z_B > 0] * 1[inside B] * 1[|D_{A->B} - D_B| < depth_rel_threshold * D_B]
    (the paper's Ph-Loss, appendix S2.2, with a relative tau). A depth <= 0 marks a pixel without a surface (a
    rendered depth where the scene is empty): such pixels of A are skipped, and B's fail the depth test. Both
    images share one size (H, W); intrinsics are per view.
    """
    p, _, h, w = image_b.shape
    for name, tensor, shape in (
        ("depth_a", depth_a, (p, h, w)), ("depth_b", depth_b, (p, h, w)),
        ("viewmat_a", viewmat_a, (p, 4, 4)), ("viewmat_b", viewmat_b, (p, 4, 4)),
        ("K_a", K_a, (p, 3, 3)), ("K_b", K_b, (p, 3, 3)),
    ):
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape}")
    points_a = unproject_depth(depth_a, K_a).reshape(p, h * w, 3)
    a_to_b = to_homogeneous(viewmat_b) @ invert_pose(viewmat_a)  # (P, 4, 4) camera A -> camera B
    points_b = points_a @ a_to_b[:, :3, :3].transpose(1, 2) + a_to_b[:, None, :3, 3]
    z_b = points_b[..., 2]
    in_front = z_b > 1e-6
    projected = points_b @ K_b.transpose(1, 2)
    uv = projected[..., :2] / torch.where(in_front, z_b, torch.ones_like(z_b))[..., None]
    # align_corners=False: normalised -1 and 1 are the outer image edges, matching pixel centres at +0.5.
    grid = torch.stack([uv[..., 0] / w * 2 - 1, uv[..., 1] / h * 2 - 1], dim=-1).view(p, h, w, 2)
    inside = (grid.abs() <= 1).all(dim=-1) & in_front.view(p, h, w) & (depth_a > 0)
    warped = F.grid_sample(image_b, grid, mode="bilinear", padding_mode="border", align_corners=False)
    sampled_depth_b = F.grid_sample(depth_b[:, None], grid, mode="bilinear", padding_mode="border",
                                    align_corners=False)[:, 0]
    depth_in_b = z_b.view(p, h, w)
    agree = (depth_in_b - sampled_depth_b).abs() < depth_rel_threshold * sampled_depth_b.abs()
    return ViewWarp(warped=warped, mask=inside & agree, depth_in_b=depth_in_b, depth_b=sampled_depth_b)


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel (1 - SSIM) / 2 in [0, 1] with 3x3 mean windows and reflection padding (Monodepth2's SSIM).

    Args:
        x, y: (P, C, H, W) images in [0, 1].

    Returns:
        (P, C, H, W); constants C1 = 0.01^2, C2 = 0.03^2 (Wang et al. 2004 with dynamic range 1).
    """
    c1, c2 = 0.01**2, 0.03**2
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    var_x = F.avg_pool2d(x * x, 3, 1) - mu_x**2
    var_y = F.avg_pool2d(y * y, 3, 1) - mu_y**2
    cov = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(target: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Per-pixel Monodepth2 error 0.85 (1 - SSIM)/2 + 0.15 |target - reconstruction|, channel mean.

    Args:
        target, reconstruction: (P, 3, H, W) in [0, 1].

    Returns:
        (P, H, W) in [0, 1].
    """
    l1 = (target - reconstruction).abs().mean(dim=1)
    return SSIM_WEIGHT * ssim_dissimilarity(target, reconstruction).mean(dim=1) + (1 - SSIM_WEIGHT) * l1


@dataclass
class PhotometricResult:
    """Ph-Loss of a view sequence.

    Fields:
        per_pair: (V-1,) masked mean per-pixel error of pair (m, m+1); NaN where the mask is empty.
        mean: () mean of the finite `per_pair` entries (NaN if none is finite).
        masks: (V-1, H, W) bool validity masks, in view m's pixel grid.
        valid_fraction: (V-1,) fraction of view m's pixels inside the mask (a near-zero fraction means
            the pair shares no geometry, and its loss says little).
    """

    per_pair: torch.Tensor
    mean: torch.Tensor
    masks: torch.Tensor
    valid_fraction: torch.Tensor


def photometric_reprojection_loss(
    images: torch.Tensor,  # (V, 3, H, W)
    depths: torch.Tensor,  # (V, H, W)
    viewmats: torch.Tensor,  # (V, 4, 4)
    Ks: torch.Tensor,  # (V, 3, 3)
    *,
    depth_rel_threshold: float = DEFAULT_DEPTH_REL_THRESHOLD,
) -> PhotometricResult:
    """Ph-Loss over adjacent pairs (the paper's metric): view m+1 is warped into view m with m's depth.

    Depths and camera translations must share one unit: scale an up-to-scale depth first (e.g. VGGT depth
    by `camera_translation_scale(vggt_extrinsics, viewmats)`), or pass VGGT's own extrinsics as `viewmats`.
    Consistent views of one scene give a loss near 0 (bilinear resampling leaves ~1e-3 on textured views).

    Args:
        images: (V, 3, H, W) in [0, 1], V >= 2, in sequence order.
        depths: (V, H, W) positive z-depth.
        viewmats: (V, 4, 4) or (V, 3, 4) world-to-camera OpenCV poses.
        Ks: (V, 3, 3) pixel intrinsics for H x W.
        depth_rel_threshold: tau as a fraction of D_B (default `DEFAULT_DEPTH_REL_THRESHOLD` = 0.05).

    Returns:
        `PhotometricResult`.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 2:
        raise ValueError(f"images has shape {tuple(images.shape)}, expected (V, 3, H, W) with V >= 2")
    v, _, h, w = images.shape
    if tuple(depths.shape) != (v, h, w):
        raise ValueError(f"depths has shape {tuple(depths.shape)}, expected {(v, h, w)}")
    if tuple(Ks.shape) != (v, 3, 3):
        raise ValueError(f"Ks has shape {tuple(Ks.shape)}, expected {(v, 3, 3)}")
    if viewmats.shape[0] != v:
        raise ValueError(f"viewmats has {viewmats.shape[0]} poses for {v} images")
    if not math.isfinite(depth_rel_threshold) or depth_rel_threshold <= 0:
        raise ValueError(f"depth_rel_threshold must be a positive number, got {depth_rel_threshold}")
    poses = to_homogeneous(viewmats).to(images)
    warp = warp_view(
        images[1:], depths[:-1], depths[1:], poses[:-1], poses[1:], Ks[:-1].to(images), Ks[1:].to(images),
        depth_rel_threshold=depth_rel_threshold,
    )
    error = photometric_error(images[:-1], warp.warped)
    valid = warp.mask.to(error.dtype)
    count = valid.sum(dim=(1, 2))
    per_pair = (error * valid).sum(dim=(1, 2)) / count.clamp_min(1)
    per_pair = torch.where(count > 0, per_pair, torch.full_like(per_pair, float("nan")))
    finite = torch.isfinite(per_pair)
    mean = per_pair[finite].mean() if finite.any() else per_pair.new_tensor(float("nan"))
    return PhotometricResult(per_pair=per_pair, mean=mean, masks=warp.mask, valid_fraction=count / (h * w))

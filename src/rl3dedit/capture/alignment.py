"""Comparing recovered camera poses with reference ones: similarity (Umeyama) alignment and pose errors.

Structure from motion recovers poses up to a similarity (scale, rotation, translation), so the recovered camera
centres are first aligned to the reference ones with the closed-form least-squares similarity of Umeyama,
"Least-squares estimation of transformation parameters between two point patterns", TPAMI 1991.
"""

from __future__ import annotations

import torch

from rl3dedit.geometry.camera import rotation_angle_deg


def umeyama(src: torch.Tensor, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale s, rotation R (3, 3) and translation t (3,) minimising sum ||dst_i - (s R src_i + t)||^2.

    Args:
        src, dst: (N, 3) corresponding points, N >= 3 and not collinear.
    """
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or src.shape[0] < 3:
        raise ValueError(f"umeyama needs two (N>=3, 3) point sets, got {tuple(src.shape)} and {tuple(dst.shape)}")
    src, dst = src.double(), dst.double()
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    covariance = dst_c.T @ src_c / src.shape[0]
    u, sigma, vh = torch.linalg.svd(covariance)
    sign = torch.ones(3, dtype=src.dtype)
    if torch.det(u) * torch.det(vh) < 0:  # a reflection would fit better; Umeyama eq. 39 forbids it
        sign[2] = -1.0
    rotation = u @ torch.diag(sign) @ vh
    variance = src_c.pow(2).sum(1).mean()
    scale = (sigma * sign).sum() / variance
    translation = mu_dst - scale * rotation @ mu_src
    return scale, rotation, translation


def pose_errors(recovered: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Rotation and camera-centre errors of recovered world-to-camera poses after aligning their centres.

    Args:
        recovered, reference: (N, 4, 4) world-to-camera OpenCV viewmats of the same N images (in the same order),
            each in its own world frame.
    Returns:
        rotation errors in degrees (mean, median, max) and centre errors as a fraction of the reference cameras'
        mean distance from their centroid (mean, median, max), plus the fitted scale.
    """
    recovered, reference = recovered.double(), reference.double()
    centres_rec = torch.linalg.inv(recovered)[:, :3, 3]
    centres_ref = torch.linalg.inv(reference)[:, :3, 3]
    scale, rotation, translation = umeyama(centres_rec, centres_ref)
    aligned_centres = scale * centres_rec @ rotation.T + translation
    # world_ref = s R world_rec + t, so a camera's world-to-camera rotation becomes R_cam R^T in the reference world.
    aligned_rotations = recovered[:, :3, :3] @ rotation.T
    rot_err = rotation_angle_deg(aligned_rotations, reference[:, :3, :3])
    extent = (centres_ref - centres_ref.mean(0)).norm(dim=1).mean()
    centre_err = (aligned_centres - centres_ref).norm(dim=1) / extent
    return {
        "rotation_error_deg_mean": float(rot_err.mean()),
        "rotation_error_deg_median": float(rot_err.median()),
        "rotation_error_deg_max": float(rot_err.max()),
        "centre_error_rel_mean": float(centre_err.mean()),
        "centre_error_rel_median": float(centre_err.median()),
        "centre_error_rel_max": float(centre_err.max()),
        "scale": float(scale),
    }

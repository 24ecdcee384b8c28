"""Camera math on world-to-camera poses: relative poses, their errors, scale alignment.

Rigid-pose primitives (inverse, homogeneous form, wxyz quaternions) live in `rl3dedit.scene.pose`.

Conventions (ARCHITECTURE.md): a pose T = [R | t] is **camera-from-world** (world-to-camera, `viewmats`), OpenCV
axes (x right, y down, z forward), as 4x4 or 3x4 matrices; VGGT's extrinsics use the same convention
(docs/references.md §4). Quaternions are **wxyz** (scalar first).

The relative-pose reward follows the paper's Eq. 2: for adjacent views m, m+1,
T_m^rel = T_{m+1} T_m^{-1}, translations compared as unit directions because VGGT (and a capture) fix no scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl3dedit.scene.pose import invert_pose, to_homogeneous

__all__ = [
    "RelativePoseError",
    "relative_poses",
    "translation_directions",
    "relative_pose_error",
    "rotation_angle_deg",
    "camera_translation_scale",
]


def relative_poses(viewmats: torch.Tensor) -> torch.Tensor:
    """Relative transforms between adjacent views (paper Eq. 2): T_m^rel = T_{m+1} T_m^{-1}.

    Args:
        viewmats: (..., V, 4, 4) or (..., V, 3, 4) camera-from-world poses, V >= 2, in view order.

    Returns:
        (..., V-1, 4, 4): entry m maps camera m's frame into camera m+1's frame.
    """
    if viewmats.ndim < 3 or viewmats.shape[-3] < 2 or viewmats.shape[-1] != 4 or viewmats.shape[-2] not in (3, 4):
        raise ValueError(f"viewmats has shape {tuple(viewmats.shape)}, expected (..., V, 4, 4) with V >= 2")
    poses = to_homogeneous(viewmats)
    return poses[..., 1:, :, :] @ invert_pose(poses[..., :-1, :, :])


def translation_directions(translations: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Unit translation directions t / max(|t|, eps) (paper Eq. 2), (..., 3) -> (..., 3).

    A zero translation (a pure rotation between two views) has no direction; it maps to the zero vector,
    so its direction error against a unit vector is exactly 1.
    """
    return translations / translations.norm(dim=-1, keepdim=True).clamp_min(eps)


@dataclass
class RelativePoseError:
    """Per-pair disagreement between predicted and reference adjacent relative poses.

    Fields (all (..., V-1)):
        rotation_sq: ||R_rel - R_rel*||_F^2, in [0, 8] (paper Eq. 2, first term).
        translation_sq: ||t~_rel - t~_rel*||_2^2 of unit directions, in [0, 4] (paper Eq. 2, second term).
        rotation_deg: geodesic angle between the two relative rotations, degrees (for reports).
        translation_deg: angle between the two relative translation directions, degrees (for reports).
    """

    rotation_sq: torch.Tensor
    translation_sq: torch.Tensor
    rotation_deg: torch.Tensor
    translation_deg: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """(...) mean over pairs of rotation_sq + translation_sq: the exponent of r_T (paper Eq. 2)."""
        return (self.rotation_sq + self.translation_sq).mean(dim=-1)


def rotation_angle_deg(rot_a: torch.Tensor, rot_b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between rotations (..., 3, 3), degrees: arccos((tr(R_a^T R_b) - 1) / 2)."""
    trace = (rot_a * rot_b).sum(dim=(-1, -2))
    return torch.rad2deg(torch.arccos(((trace - 1) / 2).clamp(-1.0, 1.0)))


def relative_pose_error(pred_viewmats: torch.Tensor, ref_viewmats: torch.Tensor) -> RelativePoseError:
    """Compare adjacent relative poses of a prediction with a reference (paper Eq. 2).

    Args:
        pred_viewmats: (..., V, 3|4, 4) predicted camera-from-world poses (e.g. VGGT extrinsics, any scale).
        ref_viewmats: (V, 3|4, 4) or (..., V, 3|4, 4) reference poses (e.g. the source cameras), broadcast
            against the prediction.

    Returns:
        `RelativePoseError` with (..., V-1) fields.
    """
    rel_pred = relative_poses(pred_viewmats)
    rel_ref = relative_poses(ref_viewmats.to(rel_pred))
    if rel_pred.shape[-3] != rel_ref.shape[-3]:
        raise ValueError(
            f"pred_viewmats has {rel_pred.shape[-3] + 1} views but ref_viewmats has {rel_ref.shape[-3] + 1}"
        )
    rot_p, rot_r = rel_pred[..., :3, :3], rel_ref[..., :3, :3]
    dir_p = translation_directions(rel_pred[..., :3, 3])
    dir_r = translation_directions(rel_ref[..., :3, 3])
    cos_t = (dir_p * dir_r).sum(dim=-1).clamp(-1.0, 1.0)
    return RelativePoseError(
        rotation_sq=((rot_p - rot_r) ** 2).sum(dim=(-1, -2)),
        translation_sq=((dir_p - dir_r) ** 2).sum(dim=-1),
        rotation_deg=rotation_angle_deg(rot_p, rot_r),
        translation_deg=torch.rad2deg(torch.arccos(cos_t)),
    )


def camera_translation_scale(pred_viewmats: torch.Tensor, ref_viewmats: torch.Tensor) -> torch.Tensor:
    """Scale s that maps predicted scene units to reference units: s = sum_m |c*_m - c*_0| / sum_m |c_m - c_0|.

    Camera centres c = -R^T t are measured from the first camera, so the ratio is invariant to where either
    world frame sits; it is the least-assumption scale alignment for up-to-scale predictions (docs/references.md §4).
    Multiply predicted depths by s before warping them with the reference cameras.

    Args:
        pred_viewmats: (..., V, 3|4, 4) predicted camera-from-world poses.
        ref_viewmats: (V, 3|4, 4) or broadcastable reference poses.

    Returns:
        (...) positive scales (1 where the prediction has coincident cameras).
    """
    def spread(poses: torch.Tensor) -> torch.Tensor:
        centers = invert_pose(poses)[..., :3, 3]
        return (centers - centers[..., :1, :]).norm(dim=-1).sum(dim=-1)

    pred_spread = spread(pred_viewmats)
    ref_spread = spread(ref_viewmats.to(pred_viewmats))
    scale = ref_spread / pred_spread.clamp_min(1e-12)
    return torch.where(pred_spread > 1e-12, scale, torch.ones_like(scale))

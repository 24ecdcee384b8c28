"""VGGT's 9-value pose encoding and its camera utilities (docs/references.md §4).

Encoding "absT_quaR_FoV": [t (3) | quaternion **xyzw, scalar last** (4) | fov_h, fov_w (2)], where [R | t] is the
**camera-from-world** extrinsic in OpenCV axes (x right, y down, z forward). This module is the only place in
rl3dedit that handles xyzw quaternions: its helpers are thin adapters over the wxyz rigid-pose maths of
`rl3dedit.scene.pose`, and VGGT's 3x4 extrinsics become 4x4 world-to-camera `viewmats` (`extrinsic_to_viewmats`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from rl3dedit.scene.pose import invert_pose, matrix_to_quaternion, quaternion_to_matrix, to_homogeneous

__all__ = [
    "ExtriIntri",
    "quat_xyzw_to_mat",
    "mat_to_quat_xyzw",
    "quat_xyzw_to_wxyz",
    "quat_wxyz_to_xyzw",
    "pose_encoding_to_extri_intri",
    "extri_intri_to_pose_encoding",
    "extrinsic_to_viewmats",
    "unproject_depth_map_to_point_map",
]


class ExtriIntri(NamedTuple):
    """extrinsic (..., 3, 4) camera-from-world [R | t], OpenCV axes; intrinsic (..., 3, 3) pixels, or None."""

    extrinsic: Tensor
    intrinsic: Tensor | None


def quat_xyzw_to_mat(quat: Tensor) -> Tensor:
    """(..., 4) xyzw quaternion, not necessarily unit -> (..., 3, 3) rotation (`scene.pose.quaternion_to_matrix`)."""
    return quaternion_to_matrix(quat_xyzw_to_wxyz(quat))


def mat_to_quat_xyzw(rot: Tensor) -> Tensor:
    """(..., 3, 3) rotation -> (..., 4) unit xyzw quaternion with non-negative w (`scene.pose.matrix_to_quaternion`)."""
    return quat_wxyz_to_xyzw(matrix_to_quaternion(rot))


def quat_xyzw_to_wxyz(quat: Tensor) -> Tensor:
    """(..., 4) xyzw (VGGT) -> (..., 4) wxyz (rl3dedit)."""
    return torch.cat([quat[..., 3:], quat[..., :3]], dim=-1)


def quat_wxyz_to_xyzw(quat: Tensor) -> Tensor:
    """(..., 4) wxyz (rl3dedit) -> (..., 4) xyzw (VGGT)."""
    return torch.cat([quat[..., 1:], quat[..., :1]], dim=-1)


def pose_encoding_to_extri_intri(pose_enc: Tensor, image_size_hw: tuple[int, int] | None = None,
                                 build_intrinsics: bool = True) -> ExtriIntri:
    """Decode (B, S, 9) pose encodings into cameras.

    Args:
        pose_enc: (B, S, 9) [t | quat xyzw | fov_h, fov_w] (radians).
        image_size_hw: (H, W) in pixels of the images the model saw; required for intrinsics.
    Returns:
        ExtriIntri(extrinsic (B, S, 3, 4) camera-from-world [R | t] (OpenCV), intrinsic (B, S, 3, 3)) with
        fy = (H/2)/tan(fov_h/2), fx = (W/2)/tan(fov_w/2), principal point (W/2, H/2), no skew. Like upstream,
        the intrinsics are allocated in the default dtype (float32) whatever the input dtype.
    """
    if pose_enc.shape[-1] != 9:
        raise ValueError("pose_enc must end in 9 values [t, quat xyzw, fov_h, fov_w], got shape "
                         f"{tuple(pose_enc.shape)}")
    rot = quat_xyzw_to_mat(pose_enc[..., 3:7])
    extrinsic = torch.cat([rot, pose_enc[..., :3, None]], dim=-1)
    if not build_intrinsics:
        return ExtriIntri(extrinsic, None)
    if image_size_hw is None:
        raise ValueError("image_size_hw=(H, W) is required to build intrinsics")
    H, W = image_size_hw
    intrinsic = torch.zeros(pose_enc.shape[:-1] + (3, 3), device=pose_enc.device)
    intrinsic[..., 0, 0] = (W / 2.0) / torch.tan(pose_enc[..., 8] / 2.0)
    intrinsic[..., 1, 1] = (H / 2.0) / torch.tan(pose_enc[..., 7] / 2.0)
    intrinsic[..., 0, 2] = W / 2
    intrinsic[..., 1, 2] = H / 2
    intrinsic[..., 2, 2] = 1.0
    return ExtriIntri(extrinsic, intrinsic)


def extri_intri_to_pose_encoding(extrinsic: Tensor, intrinsic: Tensor, image_size_hw: tuple[int, int]) -> Tensor:
    """Inverse of `pose_encoding_to_extri_intri`: (B, S, 3, 4) w2c + (B, S, 3, 3) -> (B, S, 9) float32.

    fov = 2 atan((size/2) / f); the quaternion is unit xyzw with w >= 0.
    """
    H, W = image_size_hw
    quat = mat_to_quat_xyzw(extrinsic[..., :3, :3])
    fov_h = 2 * torch.atan((H / 2) / intrinsic[..., 1, 1])
    fov_w = 2 * torch.atan((W / 2) / intrinsic[..., 0, 0])
    return torch.cat([extrinsic[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], dim=-1).float()


def extrinsic_to_viewmats(extrinsic: Tensor) -> Tensor:
    """(..., 3, 4) VGGT camera-from-world -> (..., 4, 4) rl3dedit `viewmats` (same frame, homogeneous row added)."""
    return to_homogeneous(extrinsic)


def unproject_depth_map_to_point_map(depth: Tensor, extrinsic: Tensor, intrinsic: Tensor) -> Tensor:
    """Lift depth maps to world points (upstream `unproject_depth_map_to_point_map`).

    Args:
        depth: (S, H, W, 1) or (S, H, W) z-depth.
        extrinsic: (S, 3, 4) camera-from-world, OpenCV.
        intrinsic: (S, 3, 3) pixel intrinsics.
    Returns:
        (S, H, W, 3) world points in `depth.dtype`: pixel (u, v) -> ((u - cx) d / fx, (v - cy) d / fy, d), then
        R^T (x - t). Mirrors upstream numerics: camera points in float64, rounded to float32, world transform in
        float64.
    """
    if depth.dim() == 4:
        depth = depth.squeeze(-1)
    if depth.dim() != 3 or extrinsic.shape[-2:] != (3, 4) or intrinsic.shape[-2:] != (3, 3):
        raise ValueError(f"expected depth (S, H, W[, 1]), extrinsic (S, 3, 4), intrinsic (S, 3, 3); got "
                         f"{tuple(depth.shape)}, {tuple(extrinsic.shape)}, {tuple(intrinsic.shape)}")
    S, H, W = depth.shape
    d = depth.to(torch.float64)
    k = intrinsic.to(torch.float64)
    u = torch.arange(W, dtype=torch.float64, device=depth.device).view(1, 1, W)
    v = torch.arange(H, dtype=torch.float64, device=depth.device).view(1, H, 1)
    fx, fy, cx, cy = (k[:, i, j].view(S, 1, 1) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    cam = torch.stack([(u - cx) * d / fx, (v - cy) * d / fy, d], dim=-1).float().double()
    c2w = invert_pose(extrinsic).to(torch.float64)
    world = cam @ c2w[:, None, :3, :3].transpose(-1, -2) + c2w[:, None, None, :3, 3]
    return world.to(depth.dtype)

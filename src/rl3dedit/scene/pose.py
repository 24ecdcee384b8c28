"""Rigid poses and rotations: the project's one implementation (wxyz quaternions, scalar first).

Poses are 4x4 (or 3x4) [R | t] matrices; `invert_pose` is the closed-form rigid inverse, so it stays exact in
float32 where a general matrix inverse would not. VGGT's xyzw quaternions are converted at its boundary
(`geometry.vggt.pose_encoding`), never handled here.
"""

from __future__ import annotations

import torch

__all__ = ["axis_angle_to_matrix", "invert_pose", "matrix_to_quaternion", "quaternion_to_matrix", "to_homogeneous"]


def quaternion_to_matrix(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from **wxyz** quaternions (..., 4) -> (..., 3, 3); inputs are normalised here."""
    if quats.shape[-1] != 4:
        raise ValueError(f"quats has shape {tuple(quats.shape)}, expected (..., 4) wxyz")
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def matrix_to_quaternion(rotations: torch.Tensor) -> torch.Tensor:
    """**wxyz** unit quaternions (w >= 0) from rotation matrices (..., 3, 3) -> (..., 4).

    Uses the largest of the four candidate denominators per matrix, which keeps the result stable near
    180-degree rotations (Shepperd's method).
    """
    if rotations.shape[-2:] != (3, 3):
        raise ValueError(f"rotations has shape {tuple(rotations.shape)}, expected (..., 3, 3)")
    m = rotations
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                         m[..., 1, 0] - m[..., 0, 1]], dim=-1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                         m[..., 0, 2] + m[..., 2, 0]], dim=-1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                         m[..., 1, 2] + m[..., 2, 1]], dim=-1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                         1 - m00 - m11 + m22], dim=-1),
        ],
        dim=-2,
    )  # (..., 4, 4): row k is 4 q_k q (up to sign)
    best = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    index = best.argmax(dim=-1, keepdim=True)[..., None].expand(*best.shape[:-1], 1, 4)
    quat = torch.nn.functional.normalize(candidates.gather(-2, index)[..., 0, :], dim=-1)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors (..., 3) (direction = axis, norm = angle in radians)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    half = angle / 2
    # sin(x/2)/x -> 1/2 as x -> 0; the series keeps small angles exact without a division by zero.
    scale = torch.where(angle > 1e-6, torch.sin(half) / angle.clamp_min(1e-12), 0.5 - angle**2 / 48)
    return quaternion_to_matrix(torch.cat([torch.cos(half), axis_angle * scale], dim=-1))


def _check_pose_shape(poses: torch.Tensor, name: str) -> None:
    if poses.ndim < 2 or poses.shape[-1] != 4 or poses.shape[-2] not in (3, 4):
        raise ValueError(f"{name} has shape {tuple(poses.shape)}, expected (..., 4, 4) or (..., 3, 4) poses")


def to_homogeneous(poses: torch.Tensor) -> torch.Tensor:
    """(..., 3, 4) or (..., 4, 4) poses -> (..., 4, 4) with bottom row [0, 0, 0, 1]."""
    _check_pose_shape(poses, "poses")
    if poses.shape[-2] == 4:
        return poses
    bottom = torch.zeros(*poses.shape[:-2], 1, 4, dtype=poses.dtype, device=poses.device)
    bottom[..., 0, 3] = 1
    return torch.cat([poses, bottom], dim=-2)


def invert_pose(poses: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of rigid poses (..., 3|4, 4) -> (..., 4, 4): [R | t]^-1 = [R^T | -R^T t].

    Exact for rotations (no general matrix inverse), so it is stable in float32.
    """
    poses = to_homogeneous(poses)
    rot_t = poses[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(poses)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ poses[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1
    return out

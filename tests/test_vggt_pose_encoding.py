"""Pose encoding, quaternion conventions and unprojection."""

from __future__ import annotations

import math

import torch

from rl3dedit.geometry.vggt.pose_encoding import (
    extri_intri_to_pose_encoding,
    extrinsic_to_viewmats,
    mat_to_quat_xyzw,
    pose_encoding_to_extri_intri,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_mat,
    quat_xyzw_to_wxyz,
    unproject_depth_map_to_point_map,
)
from rl3dedit.scene.pose import invert_pose, matrix_to_quaternion, quaternion_to_matrix


def _random_unit_quats(n: int, seed: int) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:] < 0, -q, q)


def test_quaternion_matrix_round_trip_including_half_turns() -> None:
    quats = torch.cat([_random_unit_quats(64, 0), torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0],
                                                                [0, 0, 0, 1.0]], dtype=torch.float64)])
    rot = quat_xyzw_to_mat(quats)
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye)
    back = mat_to_quat_xyzw(rot)
    torch.testing.assert_close(quat_xyzw_to_mat(back), rot)
    torch.testing.assert_close(back[:64], quats[:64])


def test_unnormalised_quaternion_gives_a_rotation() -> None:
    q = _random_unit_quats(4, 1)
    torch.testing.assert_close(quat_xyzw_to_mat(3.0 * q), quat_xyzw_to_mat(q))


def test_xyzw_wxyz_conversion() -> None:
    q = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert quat_xyzw_to_wxyz(q).tolist() == [4.0, 1.0, 2.0, 3.0]
    torch.testing.assert_close(quat_wxyz_to_xyzw(quat_xyzw_to_wxyz(q)), q)


def test_pose_encoding_round_trip_and_intrinsics() -> None:
    B, S, H, W = 2, 3, 294, 518
    quat = _random_unit_quats(B * S, 2).float().reshape(B, S, 4)
    t = torch.randn(B, S, 3)
    fov = torch.tensor([0.8, 1.2]).expand(B, S, 2)
    enc = torch.cat([t, quat, fov], dim=-1)
    extrinsic, intrinsic = pose_encoding_to_extri_intri(enc, (H, W))
    assert extrinsic.shape == (B, S, 3, 4) and intrinsic.shape == (B, S, 3, 3)
    assert math.isclose(intrinsic[0, 0, 1, 1].item(), (H / 2) / math.tan(0.4), rel_tol=1e-6)
    assert math.isclose(intrinsic[0, 0, 0, 0].item(), (W / 2) / math.tan(0.6), rel_tol=1e-6)
    assert intrinsic[0, 0, 0, 2].item() == W / 2 and intrinsic[0, 0, 1, 2].item() == H / 2
    torch.testing.assert_close(extri_intri_to_pose_encoding(extrinsic, intrinsic, (H, W)), enc, atol=1e-5, rtol=1e-5)


def test_extrinsics_become_viewmats_and_invert_rigidly() -> None:
    rot = quat_xyzw_to_mat(_random_unit_quats(5, 3))
    ext = torch.cat([rot, torch.randn(5, 3, 1, dtype=torch.float64)], dim=-1)
    viewmats = extrinsic_to_viewmats(ext)
    assert torch.equal(viewmats[:, :3], ext) and torch.equal(viewmats[:, 3], torch.tensor([0, 0, 0, 1.0]).expand(5, 4))
    torch.testing.assert_close(invert_pose(ext), torch.linalg.inv(viewmats))


def test_xyzw_helpers_are_adapters_over_the_wxyz_maths() -> None:
    quats = _random_unit_quats(16, 6)
    torch.testing.assert_close(quat_xyzw_to_mat(quats), quaternion_to_matrix(quat_xyzw_to_wxyz(quats)))
    rot = quat_xyzw_to_mat(quats)
    torch.testing.assert_close(quat_xyzw_to_wxyz(mat_to_quat_xyzw(rot)), matrix_to_quaternion(rot))


def test_unprojection_recovers_points_and_projects_back() -> None:
    S, H, W = 2, 6, 8
    depth = 1.0 + torch.rand(S, H, W, 1, generator=torch.Generator().manual_seed(4))
    rot = quat_xyzw_to_mat(_random_unit_quats(S, 5).float())
    ext = torch.cat([rot, torch.randn(S, 3, 1)], dim=-1)
    K = torch.tensor([[10.0, 0, W / 2], [0, 11.0, H / 2], [0, 0, 1]]).expand(S, 3, 3)
    world = unproject_depth_map_to_point_map(depth, ext, K)
    assert world.shape == (S, H, W, 3) and world.dtype == torch.float32
    cam = world @ ext[:, None, :3, :3].transpose(-1, -2) + ext[:, None, None, :3, 3]
    torch.testing.assert_close(cam[..., 2], depth[..., 0], atol=1e-5, rtol=1e-5)
    uv = (cam @ K[:, None].transpose(-1, -2))
    u = uv[..., 0] / uv[..., 2]
    torch.testing.assert_close(u, torch.arange(W, dtype=torch.float32).expand(S, H, W), atol=1e-4, rtol=1e-4)

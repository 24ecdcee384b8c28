"""Camera math: relative poses (paper Eq. 2), pose errors, scale alignment, quaternions."""

from __future__ import annotations

import math

import pytest
import torch

from rl3dedit.geometry import camera_translation_scale, relative_pose_error, relative_poses
from rl3dedit.scene import Cameras
from rl3dedit.scene.pose import (
    axis_angle_to_matrix,
    invert_pose,
    matrix_to_quaternion,
    quaternion_to_matrix,
    to_homogeneous,
)


def random_poses(n: int, generator: torch.Generator) -> torch.Tensor:
    rot = axis_angle_to_matrix(torch.randn(n, 3, generator=generator, dtype=torch.float64))
    poses = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    poses[:, :3, :3] = rot
    poses[:, :3, 3] = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    return poses


def test_invert_pose_matches_matrix_inverse():
    poses = random_poses(5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(invert_pose(poses), torch.linalg.inv(poses))
    torch.testing.assert_close(invert_pose(poses[:, :3]), torch.linalg.inv(poses))


def test_relative_poses_chain_adjacent_views():
    poses = random_poses(4, torch.Generator().manual_seed(1))
    rel = relative_poses(poses)
    assert rel.shape == (3, 4, 4)
    torch.testing.assert_close(rel @ poses[:-1], poses[1:])


def test_relative_pose_error_zero_for_same_poses_in_another_world_frame_and_scale():
    gen = torch.Generator().manual_seed(2)
    ref = random_poses(9, gen)
    world = random_poses(1, gen)[0]  # a rigid change of world frame, as VGGT's first-camera frame
    pred = ref @ invert_pose(world)
    pred[:, :3, 3] *= 3.7  # and an arbitrary scale
    err = relative_pose_error(pred[None], ref)
    assert err.rotation_sq.shape == (1, 8)
    assert err.total.abs().max() < 1e-10
    assert err.rotation_deg.max() < 1e-4 and err.translation_deg.max() < 1e-4


def test_relative_pose_error_grows_monotonically_with_perturbation():
    gen = torch.Generator().manual_seed(3)
    ref = random_poses(9, gen)
    axes = torch.nn.functional.normalize(torch.randn(9, 3, generator=gen, dtype=torch.float64), dim=-1)
    shifts = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    totals = []
    for amount in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4):
        pred = ref.clone()
        pred[:, :3, :3] = axis_angle_to_matrix(axes * amount) @ ref[:, :3, :3]
        pred[:, :3, 3] += shifts * amount
        totals.append(float(relative_pose_error(pred, ref).total))
    assert totals[0] < 1e-12
    assert all(a < b for a, b in zip(totals, totals[1:])), totals


def test_rotation_error_is_frobenius_and_angle():
    ref = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    ref[1, :3, 3] = torch.tensor([1.0, 0, 0], dtype=torch.float64)
    pred = ref.clone()
    theta = 0.3
    pred[1, :3, :3] = axis_angle_to_matrix(torch.tensor([0, 0, theta], dtype=torch.float64))
    err = relative_pose_error(pred, ref)
    # ||R(theta) - I||_F^2 = 4 (1 - cos theta) for a rotation by theta.
    assert float(err.rotation_sq[0]) == pytest.approx(4 * (1 - math.cos(theta)))
    assert float(err.rotation_deg[0]) == pytest.approx(math.degrees(theta))


def test_pose_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="viewmats"):
        relative_poses(torch.eye(4)[None])
    with pytest.raises(ValueError, match="ref_viewmats"):
        relative_pose_error(torch.eye(4).repeat(3, 1, 1), torch.eye(4).repeat(4, 1, 1))
    with pytest.raises(ValueError, match="poses"):
        to_homogeneous(torch.zeros(3, 3))


def test_camera_translation_scale_recovers_scale():
    gen = torch.Generator().manual_seed(4)
    ref = random_poses(5, gen)
    pred = ref.clone()
    pred[:, :3, 3] *= 0.25
    scale = camera_translation_scale(pred[None], ref)
    assert scale.shape == (1,)
    assert float(scale) == pytest.approx(4.0)


def test_quaternion_round_trip_wxyz():
    gen = torch.Generator().manual_seed(5)
    quats = torch.nn.functional.normalize(torch.randn(64, 4, generator=gen, dtype=torch.float64), dim=-1)
    quats = torch.where(quats[:, :1] < 0, -quats, quats)
    quats[0] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # 180 degrees about x: w = 0
    rot = quaternion_to_matrix(quats)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3))
    back = matrix_to_quaternion(rot)
    # q and -q are one rotation; compare the matrices for the w = 0 case, the quaternions elsewhere.
    torch.testing.assert_close(back[1:], quats[1:])
    torch.testing.assert_close(quaternion_to_matrix(back), rot)
    # wxyz: a quarter turn about z maps x to y.
    quarter = quaternion_to_matrix(torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]))
    torch.testing.assert_close(quarter @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1.0, 0.0]))


def test_cameras_c2w_is_the_rigid_inverse_of_viewmats():
    poses = random_poses(6, torch.Generator().manual_seed(11)).float()
    cameras = Cameras(poses, torch.eye(3).repeat(6, 1, 1), 8, 8)
    c2w = cameras.c2w
    torch.testing.assert_close(c2w, torch.linalg.inv(poses.double()).float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(c2w[:, :3, :3], poses[:, :3, :3].transpose(-1, -2), atol=0, rtol=0)  # exact R^T
    torch.testing.assert_close(cameras.centers, c2w[:, :3, 3])

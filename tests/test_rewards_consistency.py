"""ConsistencyReward: r_D, r_P (Eq. 1) and r_T (Eq. 2) with the tiny VGGT and a geometric stand-in verifier."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.geometry import VGGTOutput, build_tiny_vggt
from rl3dedit.geometry.vggt.pose_encoding import mat_to_quat_xyzw
from rl3dedit.render import render
from rl3dedit.rewards import ConsistencyReward
from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.scene.pose import axis_angle_to_matrix, invert_pose
from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

SIZE = 56  # a multiple of 14: VGGT preprocessing leaves the views untouched, so the stand-in can match pixels


class OracleVGGT(torch.nn.Module):
    """Geometric stand-in for VGGT: recognises each input among the source views and reports that view's true
    camera (in another world frame and scale, as VGGT would), with confidence falling as the match worsens.

    `pose_noise` rotates every reported camera by a fixed random axis-angle of that many radians.
    """

    def __init__(self, bank: torch.Tensor, viewmats: torch.Tensor, pose_noise: float = 0.0):
        super().__init__()
        world = torch.eye(4)
        world[:3, :3] = axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.5]))
        world[:3, 3] = torch.tensor([1.0, 2.0, -0.5])
        poses = viewmats @ invert_pose(world)
        poses[:, :3, 3] *= 0.4
        noise = axis_angle_to_matrix(
            torch.randn(len(viewmats), 3, generator=torch.Generator().manual_seed(0)) * pose_noise)
        poses[:, :3, :3] = noise @ poses[:, :3, :3]
        poses[:, :3, 3] = (noise @ poses[:, :3, 3:])[..., 0]
        self.register_buffer("bank", bank)
        self.register_buffer("poses", poses)

    def forward(self, images: torch.Tensor) -> VGGTOutput:
        b, s, _, h, w = images.shape
        dist = ((images[:, :, None] - self.bank[None, None]) ** 2).mean(dim=(-1, -2, -3))  # (B, S, V)
        best, index = dist.min(dim=-1)
        poses = self.poses[index]  # (B, S, 4, 4)
        fov = torch.full((b, s, 2), 0.9)
        pose_enc = torch.cat([poses[..., :3, 3], mat_to_quat_xyzw(poses[..., :3, :3]), fov], dim=-1)
        conf = (1 + 9 * torch.exp(-200 * best))[..., None, None].expand(b, s, h, w)
        return VGGTOutput(pose_enc=pose_enc, pose_enc_list=[pose_enc], depth=torch.ones(b, s, h, w, 1),
                          depth_conf=conf, world_points_conf=conf)


def arc_views(num_views: int, size: int) -> tuple[torch.Tensor, Cameras]:
    """Renders of the synthetic scene from an arc of cameras 10 degrees apart (views (V, 3, size, size), cameras)."""
    angles = torch.deg2rad(torch.arange(num_views) * 10.0)
    target = torch.tensor(SYNTHETIC_TARGET)
    eyes = target + torch.stack([2.4 * angles.cos(), 2.4 * angles.sin(), torch.full_like(angles, 1.35)], dim=1)
    viewmats = look_at_viewmats(eyes, target, torch.tensor([0.0, 0.0, 1.0]))
    cameras = Cameras(viewmats, intrinsics_from_fov(50.0, size, size).expand(num_views, 3, 3).clone(), size, size)
    with torch.no_grad():
        views = render(make_synthetic_scene(seed=0), cameras, mode="RGB", background=(1.0, 1.0, 1.0)).rgb
    return views.clamp(0, 1), cameras


@pytest.fixture(scope="module")
def capture():
    return arc_views(5, SIZE)


def test_exact_poses_give_pose_reward_one_and_shuffles_lower_it(capture):
    views, cameras = capture
    reward = ConsistencyReward(OracleVGGT(views, cameras.viewmats), image_size=SIZE)
    noisy = (views + 0.3 * torch.randn(views.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    corrupted = views.clone()
    corrupted[2] = noisy[2]
    group = torch.stack([views, views[[0, 3, 1, 4, 2]], corrupted])
    result = reward.evaluate(group, cameras)
    pose = result.breakdown.terms["pose"]
    assert float(pose[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(pose[1]) < 0.9
    depth = result.breakdown.terms["depth"]
    assert float(depth[0]) > float(depth[2])  # the corrupted view lowers confidence
    assert float(result.breakdown.total[0]) > float(result.breakdown.total[1])
    assert float(result.breakdown.total[0]) > float(result.breakdown.total[2])
    assert result.depth_confidence.shape == (3, 5) and result.pose_error.rotation_sq.shape == (3, 4)
    assert int(result.depth_confidence[2].argmin()) == 2  # the per-view map points at the broken view


def test_pose_reward_falls_monotonically_with_pose_noise(capture):
    views, cameras = capture
    values = []
    for noise in (0.0, 0.01, 0.03, 0.1, 0.3):
        reward = ConsistencyReward(OracleVGGT(views, cameras.viewmats, pose_noise=noise), image_size=SIZE)
        values.append(float(reward.score(views[None], cameras).terms["pose"][0]))
    assert values[0] == pytest.approx(1.0, abs=1e-5)
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_confidence_transforms_map_constant_confidence(capture):
    views, cameras = capture
    oracle = OracleVGGT(views, cameras.viewmats)  # exact matches: confidence 10 everywhere
    expected = {"raw": 10.0, "inverse": 0.9, "log": float(torch.log(torch.tensor(10.0)))}
    for name, value in expected.items():
        terms = ConsistencyReward(oracle, confidence_transform=name, image_size=SIZE).score(views[None], None).terms
        assert set(terms) == {"depth", "point"}
        assert float(terms["depth"][0]) == pytest.approx(value, rel=1e-5)


def test_tiny_vggt_batched_equals_one_by_one_and_terms_in_range(capture):
    views, cameras = capture[0][:3], capture[1][[0, 1, 2]]
    vggt = build_tiny_vggt(seed=0)
    group = torch.stack([views, views.flip(0)])
    batched = ConsistencyReward(vggt, image_size=SIZE).evaluate(group, cameras)
    one_by_one = ConsistencyReward(vggt, image_size=SIZE, batch_size=1).evaluate(group, cameras)
    for name in ("depth", "point", "pose"):
        torch.testing.assert_close(batched.breakdown.terms[name], one_by_one.breakdown.terms[name],
                                   atol=1e-5, rtol=1e-5)
    terms = batched.breakdown.terms
    assert ((terms["depth"] >= 0) & (terms["depth"] < 1)).all() and ((terms["pose"] > 0) & (terms["pose"] <= 1)).all()
    assert (batched.raw_depth_confidence >= 1).all()


def test_bad_arguments_are_refused(capture):
    views, cameras = capture
    reward = ConsistencyReward(build_tiny_vggt(seed=0), image_size=SIZE)
    with pytest.raises(ValueError, match="cameras"):
        reward.score(views[None], cameras[[0, 1]])
    with pytest.raises(ValueError, match=r"\(G, V, 3, H, W\)"):
        reward.score(views, cameras)
    with pytest.raises(ValueError, match="multiple of 14"):
        ConsistencyReward(build_tiny_vggt(seed=0), image_size=50)
    with pytest.raises(ValueError, match="confidence_transform"):
        ConsistencyReward(build_tiny_vggt(seed=0), confidence_transform="sqrt")

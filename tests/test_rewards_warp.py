"""WarpReward r_warp = exp(-Ph-Loss) with verifier depth scaled to the known cameras (paper appendix S2.2)."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.geometry import VGGTOutput, build_tiny_vggt
from rl3dedit.geometry.vggt.pose_encoding import mat_to_quat_xyzw
from rl3dedit.render import render
from rl3dedit.rewards import WarpReward
from rl3dedit.rewards.warp import crop_preprocessed_intrinsics
from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

SIZE = 56
SCALE = 0.4  # the stand-in reports poses and depth in units 0.4 times the scene's, like an up-to-scale VGGT


@pytest.fixture(scope="module")
def rendered():
    angles = torch.deg2rad(torch.arange(4) * 10.0)
    target = torch.tensor(SYNTHETIC_TARGET)
    eyes = target + torch.stack([2.4 * angles.cos(), 2.4 * angles.sin(), torch.full_like(angles, 1.35)], dim=1)
    cameras = Cameras(look_at_viewmats(eyes, target, torch.tensor([0.0, 0.0, 1.0])),
                      intrinsics_from_fov(50.0, SIZE, SIZE).expand(4, 3, 3).clone(), SIZE, SIZE)
    with torch.no_grad():
        out = render(make_synthetic_scene(seed=0), cameras, mode="RGB+ED", background=(1.0, 1.0, 1.0))
    return out.rgb.clamp(0, 1), out.depth[:, 0], cameras


class DepthOracle(torch.nn.Module):
    """Stand-in VGGT returning the true (scaled) depth and camera of each recognised input view."""

    def __init__(self, bank, depths, viewmats):
        super().__init__()
        poses = viewmats.clone()
        poses[:, :3, 3] *= SCALE
        self.bank, self.depths, self.poses = bank, depths * SCALE, poses

    def forward(self, images):
        b, s, _, h, w = images.shape
        index = ((images[:, :, None] - self.bank[None, None]) ** 2).mean(dim=(-1, -2, -3)).argmin(dim=-1)
        poses = self.poses[index]
        pose_enc = torch.cat([poses[..., :3, 3], mat_to_quat_xyzw(poses[..., :3, :3]), torch.ones(b, s, 2)], -1)
        conf = torch.ones(b, s, h, w)
        return VGGTOutput(pose_enc=pose_enc, pose_enc_list=[pose_enc], depth=self.depths[index][..., None],
                          depth_conf=conf, world_points_conf=conf)


def test_consistent_views_beat_shuffled_views(rendered):
    views, depths, cameras = rendered
    reward = WarpReward(DepthOracle(views, depths, cameras.viewmats), image_size=SIZE)
    out = reward.score(torch.stack([views, views[[0, 2, 1, 3]]]), cameras)
    r = out.terms["warp"]
    assert out.total is r and r.shape == (2,)
    assert float(r[0]) > 0.93  # Ph-Loss < 0.07 on rendered views with rendered depth
    assert float(r[0]) > float(r[1]) + 0.1


def test_tiny_vggt_runs_and_stays_in_range(rendered):
    views, _, cameras = rendered
    r = WarpReward(build_tiny_vggt(seed=0), image_size=SIZE).score(views[None], cameras).total
    assert r.shape == (1,) and torch.isfinite(r).all() and ((r > 0) & (r <= 1)).all()


def test_crop_preprocessed_intrinsics():
    K = torch.tensor([[[100.0, 0, 50], [0, 100.0, 100], [0, 0, 1]]])
    # Portrait 200 x 100 -> width 56, height 112, centre-cropped to 56 (offset 28).
    out = crop_preprocessed_intrinsics(K, (200, 100), (56, 56))
    torch.testing.assert_close(out[0], torch.tensor([[56.0, 0, 28], [0, 56.0, 28], [0, 0, 1]]))
    same = crop_preprocessed_intrinsics(K, (56, 56), (56, 56))
    torch.testing.assert_close(same, K)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="multiple of 14"):
        WarpReward(build_tiny_vggt(seed=0), image_size=57)
    with pytest.raises(ValueError, match="depth_rel_threshold"):
        WarpReward(build_tiny_vggt(seed=0), depth_rel_threshold=0.0)

"""SfMReward r_SfM = (N_reg / M) exp(-mean reprojection error) with known cameras (paper appendix S2.2)."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.render import render
from rl3dedit.rewards import SfMReward
from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

SIZE = 96


@pytest.fixture(scope="module")
def rendered():
    angles = torch.deg2rad(torch.arange(4) * 8.0)
    target = torch.tensor(SYNTHETIC_TARGET)
    eyes = target + torch.stack([2.4 * angles.cos(), 2.4 * angles.sin(), torch.full_like(angles, 1.35)], dim=1)
    cameras = Cameras(look_at_viewmats(eyes, target, torch.tensor([0.0, 0.0, 1.0])),
                      intrinsics_from_fov(50.0, SIZE, SIZE).expand(4, 3, 3).clone(), SIZE, SIZE)
    with torch.no_grad():
        views = render(make_synthetic_scene(seed=0), cameras, mode="RGB",
                       background=(1.0, 1.0, 1.0)).rgb
    return views.clamp(0, 1), cameras


def test_consistent_views_beat_shuffled_and_blank(rendered):
    pytest.importorskip("pycolmap")
    views, cameras = rendered
    blank = torch.ones_like(views)
    r = SfMReward().score(torch.stack([views, views[[0, 3, 1, 2]], blank]), cameras).terms["sfm"]
    assert float(r[0]) > 0.3
    assert float(r[0]) > float(r[1])
    assert float(r[2]) == 0.0  # no keypoints, nothing registered


def test_bad_arguments_are_refused(rendered):
    views, cameras = rendered
    with pytest.raises(ValueError, match="cameras"):
        SfMReward().score(views[None], cameras[[0, 1]])
    with pytest.raises(ValueError, match="min_inliers"):
        SfMReward(min_inliers=0)

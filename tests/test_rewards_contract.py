"""The contract every view-set reward keeps (`rewards.ViewSetReward`): VGGT consistency, warp (rendered and VGGT
depth) and SfM are checked by the same tests: shapes, batched equals one by one, camera checks, and real
consistent views scoring above the same views shuffled against their cameras."""

from __future__ import annotations

import pytest
import torch

from arc_rig import arc_rig
from rl3dedit.geometry import build_tiny_vggt
from rl3dedit.rewards import ConsistencyReward, SfMReward, ViewSetReward, WarpReward

SIZE = 98  # a multiple of 14 (VGGT's patch), and enough pixels for SIFT keypoints
V = 4


@pytest.fixture(scope="module")
def source():
    """A synthetic scene, V cameras 8 degrees apart on an arc, and the scene's renders from them."""
    return arc_rig(V, SIZE)


def _consistency(scene):
    return ConsistencyReward(build_tiny_vggt(seed=0), image_size=SIZE)


def _warp_rendered(scene):
    return WarpReward(scene=scene)


def _warp_vggt(scene):
    return WarpReward(build_tiny_vggt(seed=0), image_size=SIZE)


def _sfm(scene):
    pytest.importorskip("pycolmap")
    return SfMReward()


# name -> (builder, whether its ranking is meaningful here: the tiny VGGT has random weights, so only the
# weight-free rewards are held to real > shuffled; VGGT-1B's ranking is measured in benchmarks/score_rewards.py)
REWARDS = {
    "consistency": (_consistency, False),
    "warp-rendered": (_warp_rendered, True),
    "warp-vggt": (_warp_vggt, False),
    "sfm": (_sfm, True),
}


@pytest.fixture(params=list(REWARDS), scope="module")
def case(request, source):
    build, ranks = REWARDS[request.param]
    scene, cameras, views = source
    return build(scene), ranks, cameras, views


def _group(views: torch.Tensor) -> torch.Tensor:
    """(3, V, 3, H, W): the real views, the views in reverse order, the views darkened and shifted."""
    shifted = torch.roll(views * 0.8, shifts=3, dims=-1)
    return torch.stack([views, views.flip(0), shifted])


def test_follows_the_protocol_with_one_value_per_candidate_and_view(case):
    reward, _, cameras, views = case
    assert isinstance(reward, ViewSetReward)
    out = reward.score(_group(views), cameras)
    assert tuple(out.terms) == reward.term_names
    assert out.total.shape == (3,) and out.per_view is not None and out.per_view.shape == (3, V)
    finite = out.total[torch.isfinite(out.total)]
    assert len(finite) >= 1 and bool(((finite >= 0) & (finite <= 1)).all())


def test_batched_equals_one_by_one(case):
    reward, _, cameras, views = case
    group = _group(views)
    batched = reward.score(group, cameras)
    for i in range(len(group)):
        single = reward.score(group[i:i + 1], cameras)
        torch.testing.assert_close(single.total, batched.total[i:i + 1], atol=1e-5, rtol=1e-4, equal_nan=True)
        torch.testing.assert_close(single.per_view, batched.per_view[i:i + 1], atol=1e-5, rtol=1e-4, equal_nan=True)
        for name in reward.term_names:
            torch.testing.assert_close(single.terms[name], batched.terms[name][i:i + 1], atol=1e-5, rtol=1e-4,
                                       equal_nan=True)


def test_cameras_are_checked(case):
    reward, _, cameras, views = case
    with pytest.raises(ValueError, match="cameras"):
        reward.score(views[None], cameras[[0, 1]])
    if reward.needs_cameras:
        with pytest.raises(ValueError, match="needs the views' cameras"):
            reward.score(views[None], None)
    else:
        assert reward.score(views[None], None).total.shape == (1,)


def test_real_views_score_above_views_shuffled_against_their_cameras(case):
    reward, ranks, cameras, views = case
    if not ranks:
        pytest.skip("random tiny VGGT: its values carry no meaning (ranking with real weights needs VGGT-1B, not available to CI)")
    shuffled = views[[2, 0, 3, 1]]  # no view keeps its camera
    out = reward.score(torch.stack([views, shuffled]), cameras)
    assert float(out.total[0]) > float(out.total[1]) + 0.05

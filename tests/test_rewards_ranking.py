"""The weight-free checks rank a consistent view set above its inconsistent variants (issue 14; the real-capture
figures are in benchmarks/RESULTS.md from benchmarks/score_rewards.py)."""

from __future__ import annotations

import pytest
import torch

from arc_rig import arc_rig, render_white
from rl3dedit.rewards import SfMReward, WarpReward
from rl3dedit.rewards.perturb import PERTURBATIONS, hue_shift, shift_one_view, shuffle_views
from rl3dedit.synthetic import make_synthetic_scene

SIZE, V = 98, 4


@pytest.fixture(scope="module")
def sets():
    """The consistent renders of a synthetic scene, then each perturbation of them (seeded), and the cameras."""
    scene, cameras, views = arc_rig(V, SIZE)
    other = render_white(make_synthetic_scene(seed=1), cameras[[0]])[0]
    g = torch.Generator().manual_seed(0)
    variants = {name: fn(views, g, **({"other": other.clamp(0, 1)} if name == "replaced" else {}))
                for name, fn in PERTURBATIONS.items()}
    return scene, cameras, views, variants


def test_perturbations_change_what_they_claim(sets):
    _, _, views, variants = sets
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(shuffle_views(views, g), views)
    assert (shift_one_view(views, g, pixels=3) != views).flatten(1).any(dim=1).sum() == 1  # exactly one view moved
    hued = hue_shift(views, g)
    # Brightness (luma) is kept up to clamping; colour changes.
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    assert ((hued * luma).sum(1) - (views * luma).sum(1)).abs().mean() < 0.03
    assert (hued - views).abs().mean() > 0.02
    assert set(variants) == {"hue", "replaced", "shuffled", "shifted"}


def test_warp_with_rendered_depth_ranks_consistent_first(sets):
    scene, cameras, views, variants = sets
    out = WarpReward(scene=scene).score(torch.stack([views, *variants.values()]), cameras).total
    for name, value in zip(variants, out[1:].tolist()):
        assert float(out[0]) > value + 0.02, name


def test_sfm_ranks_consistent_first_except_recolouring(sets):
    pytest.importorskip("pycolmap")
    _, cameras, views, variants = sets
    geometric = {k: v for k, v in variants.items() if k != "hue"}  # SfM matches grey-level features: blind to hue
    out = SfMReward().score(torch.stack([views, *geometric.values()]), cameras).total
    for name, value in zip(geometric, out[1:].tolist()):
        assert float(out[0]) > value + 0.02, name

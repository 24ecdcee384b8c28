"""CompositeReward: paper Eq. 4 weights, the anchor substitution protocol, robustness to failing candidates."""

from __future__ import annotations

import logging

import pytest
import torch

from rl3dedit.geometry import build_tiny_vggt
from rl3dedit.rewards import (
    AnchorReward,
    CompositeReward,
    ConsistencyReward,
    RewardBreakdown,
    draw_anchor_index,
    load_lpips,
)
from rl3dedit.scene import Cameras

G, V, SIZE = 2, 3, 56


def cameras(v: int = V) -> Cameras:
    viewmats = torch.eye(4).repeat(v, 1, 1)
    viewmats[:, 0, 3] = torch.arange(v, dtype=torch.float32)
    K = torch.tensor([[50.0, 0, SIZE / 2], [0, 50.0, SIZE / 2], [0, 0, 1]])
    return Cameras(viewmats, K.expand(v, 3, 3).clone(), SIZE, SIZE)


class SpyViewReward:
    """A view-set reward that records what it saw; term `depth` = candidate mean brightness (NaN stays NaN)."""

    term_names = ("depth", "point", "pose")

    def __init__(self, fail_batched: bool = False, fail_candidate: int | None = None):
        self.seen: list[torch.Tensor] = []
        self.fail_batched = fail_batched
        self.fail_candidate = fail_candidate

    def score(self, views: torch.Tensor, cameras: Cameras) -> RewardBreakdown:
        self.seen.append(views.clone())
        if self.fail_batched and views.shape[0] > 1:
            raise RuntimeError("batched failure")
        marked = bool(views[0, 0, 0, 0, 0] == self.fail_candidate)
        if self.fail_candidate is not None and views.shape[0] == 1 and marked:
            raise RuntimeError("this candidate breaks the verifier")
        depth = views.mean(dim=(1, 2, 3, 4))
        ones = torch.ones(views.shape[0])
        return RewardBreakdown(total=depth, terms={"depth": depth, "point": ones * 0.5, "pose": ones * 0.25})


@pytest.fixture(scope="module")
def anchor_reward() -> AnchorReward:
    return AnchorReward(load_lpips(seed=0), lam=2.0)


def group(seed: int = 0) -> torch.Tensor:
    return torch.rand(G, V, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_weighted_sum_and_anchor_on_own_view(anchor_reward):
    spy = SpyViewReward()
    reward = CompositeReward(spy, anchor_reward)
    views, reference = group(), torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(9))
    views[1, 2] = reference  # candidate 1 generated exactly the reference anchor
    out = reward.score(views, cameras=cameras(), anchor_index=2, anchor_reference=reference)
    torch.testing.assert_close(spy.seen[0][:, 2], reference.expand(G, 3, SIZE, SIZE))
    assert set(out.terms) == {"depth", "point", "pose", "anchor"}
    expected = 0.25 * (out.terms["depth"] + out.terms["point"] + out.terms["pose"] + out.terms["anchor"])
    torch.testing.assert_close(out.total, expected)
    assert float(out.terms["anchor"][1]) == pytest.approx(1.0)  # r_a on the pre-substitution view
    assert float(out.terms["anchor"][0]) < 1
    assert not out.failed.any()


def test_substituted_anchor_is_what_vggt_sees_and_a_nan_candidate_survives():
    seen = []
    tiny = build_tiny_vggt(seed=0)

    class SpyVGGT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tiny

        def forward(self, images):
            seen.append(images.clone())
            return self.inner(images)

    reward = CompositeReward(ConsistencyReward(SpyVGGT(), image_size=SIZE), AnchorReward(load_lpips(seed=0)))
    views, reference = group(1), torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    anchor = draw_anchor_index(torch.Generator().manual_seed(5), V)
    others = [v for v in range(V) if v != anchor]
    views[1, others[0], :, :4, :4] = float("nan")  # candidate 1 is broken outside its anchor view
    out = reward.score(views, cameras=cameras(), anchor_index=anchor, anchor_reference=reference)
    (images,) = seen
    assert images.shape == (G, V, 3, SIZE, SIZE)  # one batched call, B = G
    for g in range(G):
        torch.testing.assert_close(images[g, anchor], reference)  # same a for the whole group
        torch.testing.assert_close(images[g, others], views[g, others], equal_nan=True)
    # The real tiny VGGT turns the NaN into NaN terms for candidate 1 only; it gets the group minimum.
    assert out.failed.tolist() == [False, True]
    assert torch.isfinite(out.total).all() and float(out.total[1]) == pytest.approx(float(out.total[0]))


def test_nan_candidate_gets_group_minimum(anchor_reward, caplog):
    spy = SpyViewReward()
    reward = CompositeReward(spy, anchor_reward)
    views = group(3)
    views[1, 2, 0, 0, 0] = float("nan")  # a non-anchor view: the view-set term goes NaN
    with caplog.at_level(logging.WARNING):
        out = reward.score(views, cameras=cameras(), anchor_index=0, anchor_reference=views[0, 0])
    assert out.failed.tolist() == [False, True]
    assert torch.isfinite(out.total).all()
    assert float(out.total[1]) == pytest.approx(float(out.total[0]))
    assert "group minimum" in caplog.text


def test_verifier_exception_isolated_per_candidate(anchor_reward):
    views = group(4)
    views[:, 0, 0, 0, 0] = torch.tensor([0.0, 1.0])
    spy = SpyViewReward(fail_batched=True, fail_candidate=1)
    out = CompositeReward(spy, anchor_reward).score(views, cameras=cameras(), anchor_index=2,
                                                    anchor_reference=views[0, 2])
    assert out.failed.tolist() == [False, True]
    assert len(spy.seen) == 1 + G  # one batched try, then one call per candidate
    assert float(out.total[1]) == pytest.approx(float(out.total[0]))


def test_all_candidates_failing_raises(anchor_reward):
    views = group(5)
    views[:, 1] = float("nan")
    with pytest.raises(RuntimeError, match="all 2 candidates failed"):
        CompositeReward(SpyViewReward(), anchor_reward).score(views, cameras=cameras(), anchor_index=0,
                                                              anchor_reference=torch.zeros(3, SIZE, SIZE))


def test_weights_and_arguments_are_validated(anchor_reward):
    spy = SpyViewReward()
    with pytest.raises(ValueError, match="non-negative"):
        CompositeReward(spy, anchor_reward, {"depth": -0.1, "point": 0.5, "pose": 0.3, "anchor": 0.3})
    with pytest.raises(ValueError, match="needs exactly"):
        CompositeReward(spy, anchor_reward, {"depth": 1.0, "anchor": 1.0})  # missing point, pose
    reward = CompositeReward(spy, anchor_reward)
    with pytest.raises(ValueError, match="anchor_index"):
        reward.score(group(), cameras=cameras(), anchor_index=V, anchor_reference=torch.zeros(3, SIZE, SIZE))
    with pytest.raises(ValueError, match="anchor_reference"):
        reward.score(group(), cameras=cameras(), anchor_index=0, anchor_reference=torch.zeros(3, 8, 8))


def test_draw_anchor_index_is_seeded_and_covers_views():
    draws = [draw_anchor_index(torch.Generator().manual_seed(s), 9) for s in range(200)]
    assert draws == [draw_anchor_index(torch.Generator().manual_seed(s), 9) for s in range(200)]
    assert set(draws) == set(range(9))
    with pytest.raises(ValueError, match="num_views"):
        draw_anchor_index(torch.Generator(), 0)

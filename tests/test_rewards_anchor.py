"""AnchorReward: r_a = exp(-lambda * LPIPS) (paper Eq. 3)."""

from __future__ import annotations

import math

import pytest
import torch

from rl3dedit.rewards import AnchorReward, load_lpips


@pytest.fixture(scope="module")
def lpips():
    return load_lpips(seed=0)


def test_anchor_reward_is_one_for_the_reference_and_falls_with_distortion(lpips):
    reference = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(1))
    anchors = torch.stack([(reference + s * noise).clamp(0, 1) for s in (0.0, 0.05, 0.2, 0.5)])
    out = AnchorReward(lpips, lam=2.0).score(anchors, reference)
    r = out.total
    assert out.terms["anchor"] is r and r.shape == (4,)
    assert float(r[0]) == pytest.approx(1.0)
    assert all(float(a) > float(b) for a, b in zip(r, r[1:]))
    distance = lpips(anchors[2:3], reference[None])
    assert float(r[2]) == pytest.approx(math.exp(-2.0 * float(distance)), rel=1e-5)
    assert (AnchorReward(lpips, lam=0.0).score(anchors, reference).total == 1).all()


def test_anchor_reward_validates_inputs(lpips):
    with pytest.raises(ValueError, match="lam"):
        AnchorReward(lpips, lam=-1.0)
    reward = AnchorReward(lpips)
    with pytest.raises(ValueError, match="anchor reference"):
        reward.score(torch.rand(2, 3, 64, 64), torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="anchors"):
        reward.score(torch.rand(3, 64, 64), torch.rand(3, 64, 64))

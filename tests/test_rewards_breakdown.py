"""RewardBreakdown: shapes are checked at construction."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.rewards import ConsistencyReward, RewardBreakdown, SfMReward, ViewSetReward


def test_breakdown_checks_shapes_and_exports_floats():
    out = RewardBreakdown(total=torch.tensor([0.5, 0.25]), terms={"pose": torch.tensor([1.0, 0.0])})
    assert out.as_floats(1) == {"pose": 0.0, "total": 0.25}
    with pytest.raises(ValueError, match="term 'pose'"):
        RewardBreakdown(total=torch.zeros(2), terms={"pose": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"expected \(G,\)"):
        RewardBreakdown(total=torch.zeros(2, 1), terms={})


def test_view_set_rewards_follow_the_protocol():
    assert isinstance(SfMReward(), ViewSetReward)
    assert ConsistencyReward.term_names == ("depth", "point", "pose")

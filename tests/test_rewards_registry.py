"""Reward registry: names, composite from a run config, config validation."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.rewards import (
    REWARD_NAMES,
    AnchorReward,
    CompositeReward,
    ConsistencyReward,
    RewardsConfig,
    SfMReward,
    WarpReward,
    build_composite_reward,
    build_reward,
)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: consistency, sfm, warp, anchor, composite"):
        build_reward("vggt")
    assert REWARD_NAMES == ("consistency", "sfm", "warp", "anchor", "composite")


def test_names_build_their_rewards_from_the_tiny_preset():
    config = load_config("tiny")
    assert isinstance(build_reward("consistency", config), ConsistencyReward)
    assert isinstance(build_reward("warp", config), WarpReward)
    assert isinstance(build_reward("sfm", config), SfMReward)
    anchor = build_reward("anchor", config)
    assert isinstance(anchor, AnchorReward) and anchor.lam == config.rewards.anchor_lambda


def test_composite_from_config_scores_a_group():
    config = load_config("tiny")
    reward = build_reward(config)
    assert isinstance(reward, CompositeReward) and reward.weights == config.rewards.weights
    size = config.verifier.image_size
    from rl3dedit.scene import Cameras

    cameras = Cameras(torch.eye(4).repeat(3, 1, 1), torch.eye(3).repeat(3, 1, 1), size, size)
    views = torch.rand(2, 3, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = reward.score(views, cameras=cameras, anchor_index=1, anchor_reference=views[0, 1])
    assert out.total.shape == (2,) and torch.isfinite(out.total).all()


def test_ablation_view_reward_swaps_the_composite_terms():
    # The preset's untouched paper weights follow the view reward; custom weights that do not fit are refused.
    assert load_config("tiny").override("rewards.view_reward", "sfm").rewards.weights == {"sfm": 0.5, "anchor": 0.5}
    custom = load_config("tiny").override("rewards.weights", {"depth": 0.4, "point": 0.2, "pose": 0.2, "anchor": 0.2})
    with pytest.raises(ValueError, match="needs exactly"):
        custom.override("rewards.view_reward", "sfm")
    rewards = RewardsConfig(view_reward="sfm", weights={"sfm": 0.75, "anchor": 0.25}, allow_random_lpips=True)

    class Settings:
        verifier = load_config("tiny").verifier

    Settings.rewards = rewards
    reward = build_composite_reward(Settings())
    assert isinstance(reward.view_reward, SfMReward) and reward.term_names == ("sfm", "anchor")


def test_rewards_config_validation():
    with pytest.raises(ValueError, match="non-negative"):
        RewardsConfig(weights={"depth": -1, "point": 1, "pose": 1, "anchor": 1})
    with pytest.raises(ValueError, match="needs exactly"):
        RewardsConfig(weights={"depth": 1, "anchor": 1})
    with pytest.raises(ValueError):
        RewardsConfig(confidence_transform="sqrt")


def test_missing_lpips_weights_fail_fast_unless_random_is_allowed():
    with pytest.raises(FileNotFoundError, match="rewards.lpips_weights"):
        build_reward("anchor", load_config("paper"))
    with pytest.raises(FileNotFoundError, match="rewards.lpips_weights"):  # before any VGGT weights are looked up
        build_composite_reward(load_config("paper"))

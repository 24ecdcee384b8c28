"""Scoring view sets: VGGT consistency (r_D, r_P, r_T), the weight-free warp and SfM checks, the anchor reward (r_a),
their training composite (paper Eqs. 1-4), and our LPIPS. Every reward returns a `RewardBreakdown` (higher = better);
view-set rewards share `score(views, cameras)` (`ViewSetReward`)."""

from rl3dedit.rewards.anchor import AnchorReward
from rl3dedit.rewards.breakdown import RewardBreakdown, TrainingReward, ViewSetReward
from rl3dedit.rewards.composite import CompositeReward, draw_anchor_index
from rl3dedit.rewards.confidence import transform_confidence
from rl3dedit.rewards.config import RewardsConfig, default_weights
from rl3dedit.rewards.consistency import ConsistencyEvaluation, ConsistencyReward
from rl3dedit.rewards.lpips import LPIPS, load_lpips, save_lpips
from rl3dedit.rewards.registry import REWARD_NAMES, RewardSettings, build_composite_reward, build_reward
from rl3dedit.rewards.sfm import SfMReward
from rl3dedit.rewards.warp import WarpReward

__all__ = [
    "AnchorReward",
    "CompositeReward",
    "ConsistencyEvaluation",
    "ConsistencyReward",
    "LPIPS",
    "REWARD_NAMES",
    "RewardBreakdown",
    "RewardSettings",
    "RewardsConfig",
    "SfMReward",
    "TrainingReward",
    "ViewSetReward",
    "WarpReward",
    "build_composite_reward",
    "build_reward",
    "default_weights",
    "draw_anchor_index",
    "load_lpips",
    "save_lpips",
    "transform_confidence",
]

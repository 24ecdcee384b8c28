"""Scoring edited view sets: VGGT consistency (r_D, r_P, r_T), the anchor reward (r_a), their composite
(paper Eqs. 1-4), the rejected SfM and warp rewards, and our LPIPS."""

from rl3dedit.rewards.anchor import AnchorReward
from rl3dedit.rewards.breakdown import RewardBreakdown, ViewSetReward
from rl3dedit.rewards.composite import DEFAULT_WEIGHTS, CompositeReward, draw_anchor_index
from rl3dedit.rewards.confidence import CONFIDENCE_TRANSFORMS, transform_confidence
from rl3dedit.rewards.config import VIEW_REWARD_TERMS, RewardsConfig
from rl3dedit.rewards.consistency import ConsistencyEvaluation, ConsistencyReward
from rl3dedit.rewards.lpips import LPIPS, load_lpips, save_lpips
from rl3dedit.rewards.registry import REWARD_NAMES, RewardSettings, build_composite_reward, build_reward
from rl3dedit.rewards.sfm import SfMReward
from rl3dedit.rewards.warp import WarpReward, crop_preprocessed_intrinsics

__all__ = [
    "AnchorReward",
    "CONFIDENCE_TRANSFORMS",
    "CompositeReward",
    "ConsistencyEvaluation",
    "ConsistencyReward",
    "DEFAULT_WEIGHTS",
    "LPIPS",
    "REWARD_NAMES",
    "RewardBreakdown",
    "RewardSettings",
    "RewardsConfig",
    "SfMReward",
    "VIEW_REWARD_TERMS",
    "ViewSetReward",
    "WarpReward",
    "build_composite_reward",
    "build_reward",
    "crop_preprocessed_intrinsics",
    "draw_anchor_index",
    "load_lpips",
    "save_lpips",
    "transform_confidence",
]

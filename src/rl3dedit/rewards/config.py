"""Reward settings (the `rewards:` section of a preset)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ViewRewardName = Literal["consistency", "sfm", "warp"]
"""View-set rewards: the paper's VGGT reward and the two rejected alternatives of its ablation (Table 2, 4-5)."""

ConfidenceTransformName = Literal["raw", "inverse", "log"]
"""Per-pixel maps applied to VGGT confidence before averaging (see `rewards.confidence`)."""

VIEW_REWARD_TERMS: dict[str, tuple[str, ...]] = {
    "consistency": ("depth", "point", "pose"),
    "sfm": ("sfm",),
    "warp": ("warp",),
}
"""Term names each view-set reward produces; composite weights name these plus `anchor`."""


class RewardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    view_reward: ViewRewardName = "consistency"
    """View-set reward mixed with the anchor reward: `consistency` (VGGT r_D, r_P, r_T; the paper), or the
    rejected ablations `sfm` (r_SfM) and `warp` (r_warp)."""
    weights: dict[str, float] = Field(default_factory=lambda: {"depth": 0.25, "point": 0.25, "pose": 0.25, "anchor": 0.25})
    """Composite weights per term (paper Eq. 4: 0.25 each); keys are the view reward's terms plus `anchor`."""
    anchor_lambda: float = Field(2.0, ge=0)
    """lambda in r_a = exp(-lambda * LPIPS)."""
    lpips_weights: str | None = None
    """Local LPIPS weights: one combined file (`features.*` + `lin*` keys, e.g. from `save_lpips`), or the lpips
    package's `alex.pth` lin weights together with `lpips_backbone_weights`; None = random backbone (tests and the
    tiny preset only)."""
    lpips_backbone_weights: str | None = None
    """torchvision `alexnet` state dict (`features.*` keys) used with lin-only `lpips_weights`."""
    allow_random_lpips: bool = False
    """Without `lpips_weights`: False fails fast naming the option (real training needs real LPIPS); True uses a
    seeded random LPIPS with a warning (the tiny preset and tests)."""
    confidence_transform: ConfidenceTransformName = "inverse"
    """Per-pixel VGGT confidence map before averaging: `inverse` (1 - 1/c, bounded, default), `raw` (paper-literal)
    or `log`."""
    depth_rel_threshold: float = Field(0.05, gt=0)
    """Warp reward only: depth-agreement tau as a fraction of the target view's depth."""

    @model_validator(mode="after")
    def _check_weights(self) -> "RewardsConfig":
        expected = set(VIEW_REWARD_TERMS[self.view_reward]) | {"anchor"}
        if set(self.weights) != expected:
            raise ValueError(
                f"rewards.weights has keys {sorted(self.weights)}, but rewards.view_reward={self.view_reward!r} "
                f"needs exactly {sorted(expected)}"
            )
        negative = {k: w for k, w in self.weights.items() if not w >= 0}
        if negative:
            raise ValueError(f"rewards.weights must be non-negative, found {negative}")
        if sum(self.weights.values()) <= 0:
            raise ValueError("rewards.weights sum to 0; give at least one term a positive weight")
        return self

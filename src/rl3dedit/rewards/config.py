"""Reward settings (the `rewards:` section of a preset), and the one default and validation of reward weights."""

import math
from collections.abc import Mapping
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

ANCHOR_TERM = "anchor"


def default_weights(term_names: tuple[str, ...] = (*VIEW_REWARD_TERMS["consistency"], ANCHOR_TERM)) -> dict[str, float]:
    """The default composite weights: equal over the terms, so w_D = w_P = w_T = w_a = 0.25 for VGGT + anchor
    (paper Eq. 4) and 0.5 / 0.5 for a single-term view reward + anchor."""
    return {name: 1.0 / len(term_names) for name in term_names}


def check_weights(weights: Mapping[str, float], term_names: tuple[str, ...], owner: str) -> dict[str, float]:
    """The weights as a dict, after refusing keys other than exactly `term_names`, negative or non-finite values,
    and an all-zero set. `owner` names where the weights came from in the error."""
    if set(weights) != set(term_names):
        raise ValueError(f"{owner} has keys {sorted(weights)}, but needs exactly {sorted(term_names)}")
    bad = {k: w for k, w in weights.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"{owner} must be finite and non-negative, found {bad}")
    if sum(weights.values()) <= 0:
        raise ValueError(f"{owner} sum to 0; give at least one term a positive weight")
    return dict(weights)


class RewardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    view_reward: ViewRewardName = "consistency"
    """View-set reward mixed with the anchor reward: `consistency` (VGGT r_D, r_P, r_T; the paper), or the
    rejected ablations `sfm` (r_SfM) and `warp` (r_warp)."""
    weights: dict[str, float] = Field(default_factory=default_weights)
    """Composite weights per term; keys are the view reward's terms plus `anchor`. Unset = `default_weights` of
    `view_reward` (paper Eq. 4: 0.25 each for VGGT)."""
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
        names = (*VIEW_REWARD_TERMS[self.view_reward], ANCHOR_TERM)
        # Unset weights, or another view reward's untouched defaults (a preset's weights after
        # `--set rewards.view_reward=sfm`), become this view reward's defaults; custom weights are checked as given.
        other_defaults = [default_weights((*terms, ANCHOR_TERM)) for name, terms in VIEW_REWARD_TERMS.items()
                          if name != self.view_reward]
        if "weights" not in self.model_fields_set or self.weights in other_defaults:
            self.weights = default_weights(names)
        self.weights = check_weights(self.weights, names, f"rewards.weights (view_reward={self.view_reward!r})")
        return self

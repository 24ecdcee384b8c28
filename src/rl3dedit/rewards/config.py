"""Reward settings."""

from pydantic import BaseModel, ConfigDict, Field


class RewardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(default_factory=lambda: {"depth": 0.25, "point": 0.25, "pose": 0.25, "anchor": 0.25})
    """Composite weights per term (paper Eq. 4: 0.25 each)."""
    anchor_lambda: float = 2.0
    """lambda in r_a = exp(-lambda * LPIPS)."""
    lpips_weights: str | None = None
    """Local LPIPS weights file; None = random backbone (tests and tiny preset only)."""

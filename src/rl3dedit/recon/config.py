"""3DGS fitting and refitting settings."""

from pydantic import BaseModel, ConfigDict, Field


class ReconConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fit_iters: int = Field(3000, ge=1)
    """Iterations of a base fit from a capture."""
    refit_iters: int = Field(3000, ge=1)
    """Iterations of the warm-started refit on the edited views (the paper: 3,000)."""
    ssim_weight: float = Field(0.2, ge=0.0, le=1.0)
    """lambda in (1 - lambda) * L1 + lambda * (1 - SSIM)."""

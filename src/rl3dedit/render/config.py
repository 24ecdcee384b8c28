"""Rendering settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RENDER_CHUNK_SIZE = 4
"""Default views per rasterizer call for gradient-free renders (`render_images`); see `RenderConfig.chunk_size`."""


class RenderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "torch", "gsplat"] = "auto"
    """`auto`: gsplat when its CUDA kernels load, our PyTorch rasterizer otherwise (one warning says why)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """RGB background in [0, 1]."""
    chunk_size: int = Field(RENDER_CHUNK_SIZE, ge=1)
    """Views per rasterizer call in every gradient-free render (source views, turntable, evaluation): bounds
    peak memory, ~0.2 GiB per view per million Gaussians for gsplat's expanded SH coefficients."""

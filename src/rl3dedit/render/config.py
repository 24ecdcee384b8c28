"""Rendering settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict


class RenderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "torch", "gsplat"] = "auto"
    """`auto`: gsplat for CUDA tensors when installed, our PyTorch rasterizer otherwise."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """RGB background in [0, 1]."""

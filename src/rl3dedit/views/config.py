"""View selection and grid packing settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ViewsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_views: int = Field(9, ge=1)
    """M, the number of views edited jointly (the paper uses 9)."""
    rows: int = Field(3, ge=1)
    """Grid rows; rows * cols must equal num_views."""
    cols: int = Field(3, ge=1)
    """Grid columns."""
    layout: Literal["release", "aligned"] = "aligned"
    """`release`: grid resized to the nearest FLUX-Kontext bucket, cells cropped width//cols (released weights);
    `aligned`: cells a multiple of 16 px so cell borders fall on token borders."""
    view_size: int = Field(64, ge=16)
    """Rendered view size in pixels (longer side) before tiling."""

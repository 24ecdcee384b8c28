"""View selection and grid packing settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ViewsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_views: int = Field(9, ge=1)
    """M, the number of views edited (the paper: 9, one grid). At least rows * cols; more than one grid's worth
    is split into anchored grids (`views.plan_grids`)."""
    rows: int = Field(3, ge=1)
    """Grid rows."""
    cols: int = Field(3, ge=1)
    """Grid columns."""
    layout: Literal["release", "aligned"] = "aligned"
    """`release`: grid resized to the nearest FLUX-Kontext bucket, cells cropped width//cols (released weights);
    `aligned`: cells a multiple of 16 px so cell borders fall on token borders."""
    view_size: int = Field(64, ge=16, le=4096)
    """Rendered view size in pixels (longer side) before tiling; at most 4096 (a 3x3 grid of those is already
    12288 px, far beyond what FLUX.1-Kontext edits)."""
    anchor_cells: int = Field(3, ge=0)
    """Cells of every grid after the first that hold views already edited in an earlier grid (the paper's
    anchor-guided batches for more than 9 views); < rows * cols."""

    @model_validator(mode="after")
    def _check_grid(self) -> "ViewsConfig":
        cells = self.rows * self.cols
        if self.num_views < cells:
            raise ValueError(f"views.num_views ({self.num_views}) must be at least views.rows x views.cols "
                             f"({self.rows}x{self.cols} = {cells}): a grid is never filled with repeated views")
        if self.num_views > cells and self.anchor_cells >= cells:
            raise ValueError(f"views.anchor_cells ({self.anchor_cells}) must be below rows x cols ({cells}) to "
                             "leave room for new views in each later grid")
        return self

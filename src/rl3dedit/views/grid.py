"""Packing M views into one grid image for the editor, and splitting the edited grid back into views.

Two layouts (the released RL3DEdit code, docs/references.md §2):

- `release`: what the released RL3DEdit weights were trained on. Views are pasted row-major at their own size and
  the whole grid is resized to the FLUX-Kontext bucket with the closest aspect ratio (`kontext_bucket`); `split`
  crops cells of (GW // cols) x (GH // rows) and resizes each back to the view size. Cell borders generally do not
  fall on the 16-px token grid (1024 / 3 = 341.3 px), and the round trip loses resampling detail.
- `aligned`: every cell is a multiple of 16 px (FLUX packs 8x VAE latents into 2x2 patches: one token per 16 x 16
  pixels), so cell borders are token borders. A view whose size is already a multiple of 16 is pasted untouched
  and `split(tile(v)) == v` exactly; otherwise each view is resized to the nearest multiple of 16 (at least 16) and
  back, so the round trip is exact up to that resampling.

All resizing uses PIL's Lanczos filter (the release code's choice) on 32-bit float images, one channel at a time,
so no 8-bit quantisation happens; results are clamped to [0, 1] because Lanczos overshoots at edges.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch

logger = logging.getLogger(__name__)

GridLayout = Literal["aligned", "release"]
TOKEN_PX = 16
"""Pixels per FLUX token side: 8x VAE downsampling times 2x2 latent packing."""

KONTEXT_BUCKETS: tuple[tuple[int, int], ...] = (
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184), (944, 1104),
    (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752), (1456, 720), (1504, 688),
    (1568, 672),
)
"""(W, H) resolutions FLUX.1-Kontext was trained on: diffusers' `PREFERRED_KONTEXT_RESOLUTIONS` (about 1 MP each)."""


def kontext_bucket(width: int, height: int) -> tuple[int, int]:
    """The Kontext (W, H) bucket whose aspect ratio is closest to width / height (ties: the smaller W, then H).

    This is the rule of diffusers' `FluxKontextPipeline` and of the RL3DEdit release (docs/references.md §2).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"kontext_bucket: size {width}x{height} is not positive")
    aspect = width / height
    return min(KONTEXT_BUCKETS, key=lambda wh: (abs(aspect - wh[0] / wh[1]), wh[0], wh[1]))


def _check_layout(layout: str) -> None:
    if layout not in ("aligned", "release"):
        raise ValueError(f"grid layout must be 'aligned' or 'release', got {layout!r}")


def aligned_cell_size(view_hw: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of an `aligned` cell: each side rounded to the nearest multiple of 16, at least 16."""
    return tuple(max(TOKEN_PX, TOKEN_PX * round(s / TOKEN_PX)) for s in view_hw)  # type: ignore[return-value]


def grid_size(view_hw: tuple[int, int], rows: int, cols: int, layout: GridLayout) -> tuple[int, int]:
    """(GH, GW) of the grid `tile` makes from views of size `view_hw` = (H, W)."""
    _check_layout(layout)
    h, w = view_hw
    if layout == "aligned":
        ch, cw = aligned_cell_size((h, w))
        return rows * ch, cols * cw
    bw, bh = kontext_bucket(cols * w, rows * h)
    return bh, bw


def resize_image(image: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Lanczos-resize a (C, H, W) image in [0, 1] to `size_hw`, in float (no quantisation), clamped to [0, 1]."""
    from PIL import Image

    if tuple(image.shape[1:]) == tuple(size_hw):
        return image
    h, w = size_hw
    array = image.detach().to("cpu", torch.float32).numpy()
    channels = [
        np.asarray(Image.fromarray(channel, mode="F").resize((w, h), Image.Resampling.LANCZOS)) for channel in array
    ]
    out = torch.from_numpy(np.stack(channels)).clamp(0, 1)
    return out.to(device=image.device, dtype=image.dtype)


def fill_views(views: torch.Tensor, m: int) -> torch.Tensor:
    """(m, 3, H, W) from (V, 3, H, W), V <= m, repeating views in order (view i -> i * V // m) with a warning."""
    v = views.shape[0]
    if v > m:
        raise ValueError(f"fill_views: {v} views do not fit {m} grid cells")
    if v == 0:
        raise ValueError("fill_views: no views given")
    if v == m:
        return views
    logger.warning("only %d views for %d grid cells; repeating views to fill the grid", v, m)
    return views[[i * v // m for i in range(m)]]


def tile(views: torch.Tensor, rows: int = 3, cols: int = 3, layout: GridLayout = "aligned") -> torch.Tensor:
    """Paste (V, 3, H, W) views row-major into one (3, GH, GW) grid image (see the module docstring for layouts).

    Views fill the cells row by row (view m goes to row m // cols, column m % cols); fewer than rows * cols views
    are completed by `fill_views`. GH, GW are given by `grid_size((H, W), rows, cols, layout)`.
    """
    _check_layout(layout)
    if views.ndim != 4 or views.shape[1] != 3:
        raise ValueError(f"tile: views must be (V, 3, H, W), got {tuple(views.shape)}")
    views = fill_views(views, rows * cols)
    h, w = views.shape[2:]
    cell = aligned_cell_size((h, w)) if layout == "aligned" else (h, w)
    if cell != (h, w):
        logger.info("tile: resizing %dx%d views to %dx%d cells (multiples of %d px)", w, h, cell[1], cell[0], TOKEN_PX)
        views = torch.stack([resize_image(v, cell) for v in views])
    ch, cw = cell
    grid = views.reshape(rows, cols, 3, ch, cw).permute(2, 0, 3, 1, 4).reshape(3, rows * ch, cols * cw)
    if layout == "release":
        target = grid_size((h, w), rows, cols, layout)
        if target != tuple(grid.shape[1:]):
            logger.info("tile: resizing the %dx%d grid to the Kontext bucket %dx%d", cols * cw, rows * ch, target[1], target[0])
            grid = resize_image(grid, target)
    return grid


def split(
    grid: torch.Tensor, rows: int = 3, cols: int = 3, layout: GridLayout = "aligned", view_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Cut a (3, GH, GW) grid into (rows * cols, 3, H, W) views, row-major; the inverse of `tile`.

    Cells are (GH // rows) x (GW // cols), cropped from the top-left (both layouts; the release code does the
    same). Each cell is resized to `view_size` = (H, W) when given and different (Lanczos); `None` keeps the cell
    size. For `aligned`, `split(tile(v), view_size=v.shape[2:]) == v` exactly when H and W are multiples of 16.
    """
    _check_layout(layout)
    if grid.ndim != 3 or grid.shape[0] != 3:
        raise ValueError(f"split: grid must be (3, GH, GW), got {tuple(grid.shape)}")
    ch, cw = grid.shape[1] // rows, grid.shape[2] // cols
    if ch == 0 or cw == 0:
        raise ValueError(f"split: a {grid.shape[2]}x{grid.shape[1]} grid has no room for {rows}x{cols} cells")
    if layout == "aligned" and (ch % TOKEN_PX or cw % TOKEN_PX):
        logger.warning("split: aligned grid cells are %dx%d, not multiples of %d px", cw, ch, TOKEN_PX)
    cells = grid[:, : rows * ch, : cols * cw].reshape(3, rows, ch, cols, cw).permute(1, 3, 0, 2, 4).reshape(-1, 3, ch, cw)
    if view_size is not None and tuple(view_size) != (ch, cw):
        cells = torch.stack([resize_image(c, tuple(view_size)) for c in cells])
    return cells.contiguous()

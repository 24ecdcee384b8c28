"""More views than one grid holds: anchor-guided batches (the paper's proposed fix for its 9-view limit).

The M views are already ordered along the camera path (`select_views`). `plan_grids` cuts that order into windows
of rows x cols consecutive views: the first window starts at view 0, each later one starts `cells - anchor_cells`
views after the previous one (the last is moved back so it ends at view M - 1), so each later grid repeats at least
`anchor_cells` views its predecessors edited. Those cells are filled with the earlier *edited* views, the editor
sees them as part of its input, and after splitting they are replaced by the earlier edits again, so every view has
exactly one edit and later grids are pulled toward the earlier ones. A window of consecutive path views keeps
neighbouring cells neighbouring views, which the relative-pose reward and Ph-Loss assume (paper Eq. 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridSlot:
    """One grid of a multi-grid edit.

    Fields:
        indices: (rows * cols) positions in the M ordered views, row-major cell order.
        anchored: per cell, True when that view was edited by an earlier grid (an anchor).
    """

    indices: tuple[int, ...]
    anchored: tuple[bool, ...]

    @property
    def new_indices(self) -> list[int]:
        return [i for i, anchor in zip(self.indices, self.anchored) if not anchor]


def num_grids(num_views: int, cells: int, anchor_cells: int) -> int:
    """1 + ceil((M - cells) / (cells - anchor_cells)) grids for M >= cells views (1 when M == cells)."""
    if num_views < cells:
        raise ValueError(f"{num_views} views do not fill one grid of {cells} cells")
    if num_views == cells:
        return 1
    if not 0 <= anchor_cells < cells:
        raise ValueError(f"anchor_cells must be in [0, {cells}), got {anchor_cells}")
    stride = cells - anchor_cells
    return 1 + -(-(num_views - cells) // stride)


def plan_grids(num_views: int, rows: int, cols: int, anchor_cells: int) -> list[GridSlot]:
    """The grids that edit `num_views` path-ordered views (see the module docstring); every view is new in exactly
    one grid, and every grid after the first starts with its anchors (the views just before its new ones)."""
    cells = rows * cols
    count = num_grids(num_views, cells, anchor_cells)
    slots, edited_until = [], 0
    for g in range(count):
        start = min(g * (cells - anchor_cells), num_views - cells)
        indices = tuple(range(start, start + cells))
        slots.append(GridSlot(indices, tuple(i < edited_until for i in indices)))
        edited_until = start + cells
    return slots


EditFn = Callable[[torch.Tensor, int], torch.Tensor]
"""edit(grid_views, grid_index) -> edited views: (rows * cols, 3, H, W) in [0, 1] in and out, row-major."""


def edit_in_grids(views: torch.Tensor, slots: list[GridSlot], edit: EditFn) -> torch.Tensor:
    """Edit (M, 3, H, W) path-ordered views grid by grid; returns the (M, 3, H, W) edits.

    Each grid's anchored cells are given the earlier edits as input, and after `edit` those cells are set back to
    the earlier edits, so anchors come back unchanged whatever the editor did to them.
    """
    if views.ndim != 4 or views.shape[1] != 3:
        raise ValueError(f"edit_in_grids: views must be (M, 3, H, W), got {tuple(views.shape)}")
    covered = sorted({i for slot in slots for i in slot.indices})
    if covered != list(range(views.shape[0])):
        raise ValueError(f"edit_in_grids: the grids cover views {covered}, not 0..{views.shape[0] - 1}")
    edited = views.clone()
    for g, slot in enumerate(slots):
        index = list(slot.indices)
        anchored = torch.tensor(slot.anchored, device=views.device)
        inputs = torch.where(anchored[:, None, None, None], edited[index], views[index])
        out = edit(inputs, g)
        if tuple(out.shape) != tuple(inputs.shape):
            raise ValueError(f"edit_in_grids: grid {g} came back as {tuple(out.shape)}, expected {tuple(inputs.shape)}")
        edited[index] = torch.where(anchored[:, None, None, None], edited[index], out.to(edited))
        logger.info("grid %d/%d: %d new views, %d anchors", g + 1, len(slots), len(slot.new_indices),
                    sum(slot.anchored))
    return edited

"""Choosing the views to edit, packing them into grids, camera paths, and image files."""

from rl3dedit.views.grid import (
    KONTEXT_BUCKETS,
    TOKEN_PX,
    GridLayout,
    aligned_cell_size,
    fill_views,
    grid_size,
    kontext_bucket,
    resize_image,
    split,
    tile,
)
from rl3dedit.views.io import IMAGE_SUFFIXES, load_image, load_views, make_comparison_sheet, save_image
from rl3dedit.views.multigrid import EditFn, GridSlot, edit_in_grids, num_grids, plan_grids
from rl3dedit.views.paths import orbit_cameras, turntable_path
from rl3dedit.views.select import CaptureFrame, camera_features, capture_frame, order_along_path, select_views

__all__ = [
    "IMAGE_SUFFIXES",
    "KONTEXT_BUCKETS",
    "TOKEN_PX",
    "CaptureFrame",
    "EditFn",
    "GridSlot",
    "GridLayout",
    "aligned_cell_size",
    "camera_features",
    "capture_frame",
    "edit_in_grids",
    "fill_views",
    "grid_size",
    "kontext_bucket",
    "load_image",
    "load_views",
    "make_comparison_sheet",
    "num_grids",
    "order_along_path",
    "orbit_cameras",
    "plan_grids",
    "resize_image",
    "save_image",
    "select_views",
    "split",
    "tile",
    "turntable_path",
]

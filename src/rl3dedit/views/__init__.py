"""Choosing the views to edit, packing them into grids, camera paths, and image files."""

from rl3dedit.views.grid import KONTEXT_BUCKETS, TOKEN_PX, GridLayout, grid_size, kontext_bucket, split, tile
from rl3dedit.views.io import IMAGE_SUFFIXES, load_image, load_views, make_comparison_sheet, save_image
from rl3dedit.views.multigrid import GridSlot, edit_in_grids, num_grids, plan_grids
from rl3dedit.views.paths import orbit_cameras, turntable_path
from rl3dedit.views.select import order_along_path, select_views

# The public API (20 names); helpers are imported from their modules.
__all__ = [
    "GridLayout",
    "GridSlot",
    "IMAGE_SUFFIXES",
    "KONTEXT_BUCKETS",
    "TOKEN_PX",
    "edit_in_grids",
    "grid_size",
    "kontext_bucket",
    "load_image",
    "load_views",
    "make_comparison_sheet",
    "num_grids",
    "orbit_cameras",
    "order_along_path",
    "plan_grids",
    "save_image",
    "select_views",
    "split",
    "tile",
    "turntable_path",
]

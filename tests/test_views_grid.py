"""Grids: tile/split exactness (aligned), bounded round-trip error (release), Kontext buckets, filling."""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path

import pytest
import torch

from rl3dedit.views import KONTEXT_BUCKETS, grid_size, kontext_bucket, split, tile
from rl3dedit.views.grid import fill_views


def _smooth_views(v: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Band-limited random views (upsampled noise), like renders rather than white noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(v, 3, max(2, h // 8), max(2, w // 8), generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("rows_cols", [(3, 3), (2, 4)])
def test_aligned_round_trip_is_exact(rows_cols):
    rows, cols = rows_cols
    views = torch.rand(rows * cols, 3, 48, 32)
    grid = tile(views, rows, cols, "aligned")
    assert tuple(grid.shape) == (3, *grid_size((48, 32), rows, cols, "aligned")) == (3, rows * 48, cols * 32)
    assert torch.equal(grid[:, 48:96, :32], views[cols])  # row-major: view `cols` starts the second row
    assert torch.equal(split(grid, rows, cols, "aligned", view_size=(48, 32)), views)


def test_aligned_cells_are_token_multiples_for_odd_sizes():
    views = _smooth_views(9, 60, 70)
    grid = tile(views, 3, 3, "aligned")
    assert tuple(grid.shape) == (3, 3 * 64, 3 * 64)
    back = split(grid, 3, 3, "aligned", view_size=(60, 70))
    assert back.shape == views.shape
    assert (back - views).abs().mean() < 0.01


def test_release_layout_uses_the_kontext_bucket_and_round_trips_within_bound():
    views = _smooth_views(9, 64, 96)
    grid = tile(views, 3, 3, "release")
    assert tuple(grid.shape) == (3, 832, 1248)  # 288 x 192 grid (3:2) -> the (1248, 832) bucket
    back = split(grid, 3, 3, "release", view_size=(64, 96))
    assert back.shape == views.shape and back.min() >= 0 and back.max() <= 1
    err = (back - views).abs()
    assert err.mean() < 0.01 and err.max() < 0.2
    # Cells of W // 3: 1248 / 3 = 416 exactly, 832 / 3 = 277.3 -> the last row of pixels is dropped.
    assert split(grid, 3, 3, "release").shape == (9, 3, 277, 416)


def test_kontext_bucket_picks_closest_aspect():
    assert kontext_bucket(300, 300) == (1024, 1024)
    assert kontext_bucket(1500, 1000) == (1248, 832)
    assert kontext_bucket(100, 1000) == (672, 1568)
    assert len(KONTEXT_BUCKETS) == 17 and all(w % 16 == 0 and h % 16 == 0 for w, h in KONTEXT_BUCKETS)
    with pytest.raises(ValueError, match="not positive"):
        kontext_bucket(0, 5)


def test_buckets_match_diffusers():
    """Read diffusers' constant from its source with `ast` (importing the pipeline module takes ~14 s on CPU)."""
    spec = importlib.util.find_spec("diffusers")
    if spec is None or spec.origin is None:
        pytest.skip("diffusers is not installed")
    source = Path(spec.origin).parent / "pipelines" / "flux" / "pipeline_flux_kontext.py"
    tree = ast.parse(source.read_text())
    values = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PREFERRED_KONTEXT_RESOLUTIONS" for t in node.targets)
    ]
    assert len(values) == 1 and tuple(tuple(r) for r in values[0]) == KONTEXT_BUCKETS


def test_fill_views_repeats_with_warning(caplog):
    views = torch.arange(4.0)[:, None, None, None].expand(4, 3, 16, 16)
    with caplog.at_level(logging.WARNING):
        filled = fill_views(views, 9)
    assert "repeating views" in caplog.text
    assert filled[:, 0, 0, 0].tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert tile(views, 3, 3).shape == (3, 48, 48)
    with pytest.raises(ValueError, match="5 views do not fit 4 grid cells"):
        tile(torch.zeros(5, 3, 16, 16), 2, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="layout must be 'aligned' or 'release'"):
        tile(torch.zeros(9, 3, 16, 16), layout="tight")
    with pytest.raises(ValueError, match=r"views must be \(V, 3, H, W\)"):
        tile(torch.zeros(9, 16, 16))
    with pytest.raises(ValueError, match=r"grid must be \(3, GH, GW\)"):
        split(torch.zeros(1, 3, 48, 48))

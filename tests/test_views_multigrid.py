"""More than one grid of views (rl3dedit.views.multigrid): plans, anchors, and a 27-view edit in 4 grids."""

import pytest
import torch

from rl3dedit.views import edit_in_grids, num_grids, plan_grids, split, tile
from rl3dedit.views.config import ViewsConfig


def test_plan_covers_every_view_once_as_new_and_anchors_earlier_edits() -> None:
    for num_views, anchors in [(9, 3), (27, 3), (36, 3), (20, 3), (18, 0), (10, 8)]:
        slots = plan_grids(num_views, 3, 3, anchors)
        assert len(slots) == num_grids(num_views, 9, anchors)
        new = [i for slot in slots for i in slot.new_indices]
        assert sorted(new) == list(range(num_views)), (num_views, anchors)
        seen: set[int] = set()
        for slot in slots:
            assert list(slot.indices) == list(range(slot.indices[0], slot.indices[0] + 9)), "a window of path views"
            assert all(anchor == (i in seen) for i, anchor in zip(slot.indices, slot.anchored))
            if slot is not slots[0]:
                assert sum(slot.anchored) >= anchors
            seen.update(slot.indices)
    assert num_grids(27, 9, 3) == 4 and num_grids(9, 9, 3) == 1 and num_grids(36, 9, 3) == 6


def _warm_grade(views: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in editor: a fixed colour transform, so a perfectly consistent edit exists."""
    matrix = torch.tensor([[0.9, 0.25, 0.0], [0.1, 0.75, 0.1], [0.0, 0.15, 0.6]])
    return torch.einsum("oc,vchw->vohw", matrix, views).clamp(0, 1)


def test_27_views_in_4_grids_keep_anchored_cells_unchanged() -> None:
    generator = torch.Generator().manual_seed(0)
    views = torch.rand(27, 3, 16, 16, generator=generator)
    slots = plan_grids(27, 3, 3, 3)
    assert len(slots) == 4
    seen_inputs = []

    def editor(grid_views: torch.Tensor, g: int) -> torch.Tensor:
        seen_inputs.append(grid_views.clone())
        grid = tile(grid_views, 3, 3)
        # The stand-in also perturbs every cell it is given, anchors included: the split must restore them.
        return split(_warm_grade(grid[None])[0] + 0.01 * g, 3, 3, view_size=(16, 16)).clamp(0, 1)

    edited = edit_in_grids(views, slots, editor)
    first_edit = {i: edited[i].clone() for i in slots[0].indices}
    # Every view carries the edit of the grid where it was new; anchors were fed the earlier edits.
    for g, slot in enumerate(slots):
        for cell, (i, anchored) in enumerate(zip(slot.indices, slot.anchored)):
            if anchored:
                assert torch.equal(seen_inputs[g][cell], edited[i]), "the editor sees the earlier edit as anchor"
            else:
                expected = (_warm_grade(views[i][None])[0] + 0.01 * g).clamp(0, 1)
                assert torch.allclose(edited[i], expected, atol=1e-6)
    for i in first_edit:
        assert torch.equal(edited[i], first_edit[i])
    assert not torch.equal(edited[6], (_warm_grade(views[6][None])[0] + 0.01).clamp(0, 1)), "anchor not re-edited"


def test_views_config_allows_more_views_than_a_grid() -> None:
    assert ViewsConfig(num_views=27).anchor_cells == 3
    with pytest.raises(ValueError, match="at least views.rows x views.cols"):
        ViewsConfig(num_views=4)
    with pytest.raises(ValueError, match="anchor_cells"):
        ViewsConfig(num_views=18, anchor_cells=9)
    with pytest.raises(ValueError, match="cover views"):
        edit_in_grids(torch.zeros(10, 3, 8, 8), plan_grids(9, 3, 3, 3), lambda v, g: v)

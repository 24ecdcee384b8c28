"""The edit job with more views than one grid (issue 13): 27 views in 4 anchored 3x3 grids, a stand-in editor."""

import json
from pathlib import Path

import torch

from rl3dedit.config import load_config
from rl3dedit.editor.rollout import EditResult
from rl3dedit.pipeline import run_edit
from rl3dedit.synthetic import make_synthetic_capture
from rl3dedit.views import split, tile

GRADE = torch.tensor([[0.9, 0.25, 0.0], [0.1, 0.75, 0.1], [0.0, 0.15, 0.6]])


class _NoPipeline:
    """What the edit job releases after editing (`editor.components.release_pipeline`)."""

    components: dict = {}

    def remove_all_hooks(self) -> None:
        pass


class GradingEditor:
    """A deterministic stand-in for the grid editor: a fixed colour transform (so a consistent 3D edit exists),
    plus 0.01 per call so a re-edited anchor would be visible."""

    rows = cols = 3
    calls = 0
    pipe = _NoPipeline()

    @classmethod
    def from_config(cls, config, device, editor=None):
        return cls()

    def edit_views(self, views, instruction, *, num_steps, guidance_scale, seed, rewrite=True):
        source_grid = tile(views.float().cpu(), 3, 3)
        grid = (torch.einsum("oc,chw->ohw", GRADE, source_grid) + 0.01 * GradingEditor.calls).clamp(0, 1)
        GradingEditor.calls += 1
        edited = split(grid, 3, 3, view_size=tuple(views.shape[2:]))
        return EditResult(views=edited, grid=grid, source_grid=source_grid, prompt=instruction, seed=seed)


def test_27_views_are_edited_in_4_anchored_grids(tmp_path: Path, monkeypatch) -> None:
    import rl3dedit.editor

    monkeypatch.setattr(rl3dedit.editor, "KontextGridEditor", GradingEditor)
    GradingEditor.calls = 0
    scene, capture = make_synthetic_capture(num_views=30, size=32, seed=0)
    config = (load_config("tiny").override("views.num_views", 27).override("views.view_size", 32)
              .override("recon.refit_iters", 2))
    report = run_edit(config, instruction="warm it up", out_dir=tmp_path / "run", scene=scene,
                      cameras=capture.cameras, turntable_frames=4)
    assert GradingEditor.calls == 4
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["view_indices"]) == 27 and len(metrics["grids"]) == 4
    assert (tmp_path / "run" / "grid_edited_03.png").is_file()
    assert report.edited_views.shape == (27, 3, 32, 32)
    graded = torch.einsum("oc,vchw->vohw", GRADE, report.source_views)
    for g, slot in enumerate(metrics["grids"]):
        for view, anchored in zip(slot["views"], slot["anchored"]):
            first = next(k for k, s in enumerate(metrics["grids"]) if view in s["views"])
            assert anchored == (first < g)
            # Each view keeps the edit of the first grid it appeared in: anchors come back unchanged.
            expected = (graded[view] + 0.01 * first).clamp(0, 1)
            assert torch.allclose(report.edited_views[view], expected, atol=1e-5), (g, view)

"""End-to-end tiny edit: every listed output exists and is well formed; a failing stage leaves no folder."""

import json
from pathlib import Path

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.pipeline import RUN_MARKER, run_edit
from rl3dedit.scene import read_ply
from rl3dedit.synthetic import make_synthetic_capture

EXPECTED_FILES = [
    "edited.ply", "grid_source.png", "grid_edited.png", "before_after.png", "turntable.mp4", "metrics.json",
    "config.yaml", RUN_MARKER,
]


@pytest.fixture(scope="module")
def tiny_config():
    config = load_config("tiny")
    return config.override("recon.refit_iters", 20)


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic_capture(num_views=12, size=64, seed=0)


def test_tiny_edit_writes_every_output(tmp_path: Path, tiny_config, synthetic):
    scene, capture = synthetic
    stages = []
    report = run_edit(
        tiny_config, instruction="make the red object blue", out_dir=tmp_path / "run", scene=scene,
        cameras=capture.cameras, turntable_frames=6, progress=lambda name, i, n: stages.append(name),
    )
    out = tmp_path / "run"
    for name in EXPECTED_FILES:
        assert (out / name).is_file(), name
    views = sorted(p.name for p in (out / "views").iterdir())
    assert views == [f"edited_{i:02d}.png" for i in range(9)] + [f"source_{i:02d}.png" for i in range(9)]
    assert stages == ["load", "select", "render", "edit", "verify", "refit", "turntable", "write"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["timings_s"]) == set(stages)
    assert metrics["peak_memory_mb"] > 0
    assert set(metrics["consistency"]) == {"source", "edited"}
    assert len(metrics["view_indices"]) == 9
    edited = read_ply(out / "edited.ply")
    assert edited.num_gaussians == report.edited_scene.num_gaussians
    assert torch.equal(edited.means, report.edited_scene.means.cpu())
    assert report.source_views.shape == report.edited_views.shape == (9, 3, 64, 64)
    # The refit must move the scene toward the edited views.
    assert not torch.equal(report.edited_scene.sh_dc, report.source_scene.sh_dc)
    assert (out / "turntable.mp4").stat().st_size > 1000


def test_failing_stage_leaves_no_output(tmp_path: Path, tiny_config, synthetic, monkeypatch):
    import rl3dedit.recon

    def broken_refit(*args, **kwargs):
        raise RuntimeError("refit exploded")

    monkeypatch.setattr(rl3dedit.recon, "refit", broken_refit)
    scene, capture = synthetic
    with pytest.raises(RuntimeError, match="refit exploded"):
        run_edit(tiny_config, instruction="x", out_dir=tmp_path / "run", scene=scene, cameras=capture.cameras)
    assert list(tmp_path.iterdir()) == []


def test_empty_instruction_is_refused(tmp_path: Path, tiny_config, synthetic):
    scene, capture = synthetic
    with pytest.raises(ValueError, match="instruction is empty"):
        run_edit(tiny_config, instruction="  ", out_dir=tmp_path / "run", scene=scene, cameras=capture.cameras)

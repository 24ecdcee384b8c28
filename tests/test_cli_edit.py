"""The `edit` and `demo` commands: argument errors, missing real weights, and a tiny demo run."""

import json
from pathlib import Path

from typer.testing import CliRunner

from provenance_check import assert_records_versions
from rl3dedit.cli.main import app

runner = CliRunner()


def test_edit_needs_inputs(tmp_path: Path):
    result = runner.invoke(app, ["edit", "--instruction", "x", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "--data" in result.output


def test_paper_preset_without_weights_fails_clearly(tmp_path: Path):
    from rl3dedit.scene import write_cameras_json, write_ply
    from rl3dedit.synthetic import make_synthetic_capture

    scene, capture = make_synthetic_capture(num_views=9, size=32, seed=0)
    write_ply(scene, tmp_path / "scene.ply")
    write_cameras_json(capture.cameras, tmp_path / "cameras.json")
    result = runner.invoke(
        app,
        ["edit", "--preset", "paper", "--device", "cpu", "--scene", str(tmp_path / "scene.ply"),
         "--cameras", str(tmp_path / "cameras.json"), "--instruction", "x", "--out", str(tmp_path / "o")],
    )
    assert result.exit_code != 0
    assert "FLUX.1-Kontext" in result.output
    assert not (tmp_path / "o").exists()


def test_demo_runs_and_says_tiny_is_not_quality(tmp_path: Path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "does not edit meaningfully" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["instruction"] == "make the red object blue"
    assert_records_versions(metrics["provenance"])
    assert (out / "turntable.mp4").is_file()


def test_edit_from_a_capture_keeps_its_base_fit_and_records_its_inputs(tmp_path: Path, shared_dir: Path):
    face = shared_dir / "data" / "face"
    out = tmp_path / "run"
    args = ["edit", "--data", str(face), "--downscale", "16", "--fit-iters", "2", "--set", "recon.max_init_points=300",
            "--set", "recon.eval_every=1000", "--refit-iters", "1", "--view-size", "32", "-i", "give him a hat",
            "--fit-cache", str(tmp_path / "cache"), "--out"]
    result = runner.invoke(app, [*args, str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert "fit" in metrics["timings_s"] and "load" not in metrics["timings_s"], "the base fit is its own stage"
    inputs = metrics["inputs"]
    assert inputs["kind"] == "capture" and inputs["ply"] is None and Path(inputs["path"]).is_absolute()
    assert Path(inputs["path"]).resolve() == face.resolve()
    assert metrics["base_fit"]["iters"] == 2
    from rl3dedit.scene import read_cameras_json, read_ply

    assert read_ply(out / "base" / "scene.ply").num_gaussians == metrics["base_fit"]["num_gaussians"]
    assert len(read_cameras_json(out / "base" / "cameras.json")) == 65
    # A second edit of the same capture with the same fit settings reuses the fit: the identical base scene.
    again = runner.invoke(app, [*args, str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert second["base_fit_reused"] and not metrics["base_fit_reused"]
    first_scene, second_scene = read_ply(out / "base" / "scene.ply"), read_ply(tmp_path / "again" / "base" / "scene.ply")
    assert (first_scene.means == second_scene.means).all()

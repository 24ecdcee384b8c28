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

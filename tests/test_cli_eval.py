"""`rl3dedit eval`: the tiny benchmark end to end with our edit, argument errors, and the paper preset failing fast."""

import importlib.resources
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rl3dedit.cli.main import app

runner = CliRunner()
TINY_CASES = Path(str(importlib.resources.files("rl3dedit") / "configs" / "eval" / "tiny.yaml"))


def test_tiny_benchmark_end_to_end(tmp_path: Path):
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--cases", str(TINY_CASES), "--preset", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "done" in result.output
    results = json.loads((out / "results.json").read_text())
    assert [case["status"] for case in results["cases"]] == ["ok", "ok", "ok"]
    assert set(results["aggregate"]) == {"overall", "in_distribution", "unseen_instruction", "new_scene"}
    first = results["cases"][0]
    for key in ("clip_dir", "clip_t", "ph_loss_rendered_depth", "vggt_total", "time_s"):
        assert first["metrics"][key]["value"] is not None, key
    assert first["metrics"]["viescore"]["value"] is None and results["judge_model"] is None
    assert first["metrics"]["time_s"]["value"] == pytest.approx(sum(first["details"]["timings_s"].values()))
    assert (out / "cases/synth-recolor/edit/edited.ply").is_file()
    table = (out / "table.md").read_text()
    assert "| RL3DEdit (tiny preset) |" in table
    report = (out / "report.html").read_text()
    for case in results["cases"]:
        assert f'data-case-id="{case["case_id"]}"' in report

    if shutil.which("chromium"):
        from test_eval_report import open_in_chromium

        dom, _ = open_in_chromium(out / "report.html", tmp_path)
        assert "ready: 3 cases" in dom and '<pre id="js-errors"></pre>' in dom

    again = runner.invoke(app, ["eval", "--cases", str(TINY_CASES), "--preset", "tiny", "--out", str(out), "--resume"])
    assert again.exit_code == 0, again.output
    assert "resumed: 3 case(s)" in again.output


def test_invalid_cases_file_names_the_entry(tmp_path: Path):
    bad = tmp_path / "cases.yaml"
    bad.write_text("cases:\n  - id: a\n    split: sideways\n")
    result = runner.invoke(app, ["eval", "--cases", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "cases[0] (id 'a')" in result.output and "split" in result.output
    assert not (tmp_path / "o").exists()


def test_paper_preset_without_clip_weights_fails_before_any_case(tmp_path: Path):
    result = runner.invoke(
        app, ["eval", "--cases", str(TINY_CASES), "--preset", "paper", "--device", "cpu", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "clip-vit-large-patch14" in result.output and "eval.clip_model" in result.output
    assert not (tmp_path / "o").exists()

"""`rl3dedit eval`: the tiny benchmark end to end with our edit, argument errors, and the paper preset failing fast."""

import importlib.resources
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from provenance_check import assert_records_versions
from rl3dedit.cli.main import app

runner = CliRunner()
TINY_CASES = Path(str(importlib.resources.files("rl3dedit") / "configs" / "eval" / "tiny.yaml"))


def _check_run(out: Path, tmp_path: Path, case_ids: list[str], *, vggt: bool) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert_records_versions(results["provenance"])
    assert [case["case_id"] for case in results["cases"]] == case_ids
    assert all(case["status"] == "ok" for case in results["cases"]), results["cases"]
    first = results["cases"][0]
    for key in ("clip_dir", "clip_t", "ph_loss_rendered_depth", "time_s") + (("vggt_total",) if vggt else ()):
        assert first["metrics"][key]["value"] is not None, key
    # Without an endpoint VIEScore is not computed, never a number.
    assert first["metrics"]["viescore"]["value"] is None and results["judge_model"] is None
    assert first["metrics"]["time_s"]["value"] == pytest.approx(sum(first["details"]["timings_s"].values()))
    assert (out / "cases" / case_ids[0] / "edit" / "edited.ply").is_file()
    assert "| RL3DEdit (tiny preset) |" in (out / "table.md").read_text()
    report = (out / "report.html").read_text()
    for case_id in case_ids:
        assert f'data-case-id="{case_id}"' in report
    if shutil.which("chromium"):
        from test_eval_report import open_in_chromium

        dom, _ = open_in_chromium(out / "report.html", tmp_path)
        assert f"ready: {len(case_ids)} cases" in dom and '<pre id="js-errors"></pre>' in dom
    return results


def test_one_tiny_case_end_to_end_and_resume(tmp_path: Path):
    """Our edit (run_edit) through the CLI on the first tiny case, with a 2-step refit to stay fast."""
    from rl3dedit.config import dump_config, load_config

    data = yaml.safe_load(TINY_CASES.read_text())
    data["cases"] = data["cases"][:1]
    cases = tmp_path / "cases.yaml"
    cases.write_text(yaml.safe_dump(data))
    config = tmp_path / "config.yaml"
    dump_config(load_config("tiny").override("recon.refit_iters", 2).override("eval.turntable_frames", 4), config)
    out = tmp_path / "eval"
    # VGGT metrics are covered by test_eval_runner; leaving them out here keeps this test fast.
    args = ["eval", "--cases", str(cases), "--config", str(config), "--out", str(out),
            "--metrics", "clip,ph_loss_rendered_depth,viescore,time"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    _check_run(out, tmp_path, ["synth-recolor"], vggt=False)
    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert "resumed: 1 case(s)" in again.output
    refused = runner.invoke(app, args)
    assert refused.exit_code != 0 and "--resume" in refused.output


def test_tiny_benchmark_with_the_tiny_preset(tmp_path: Path):
    """The documented smoke command: every tiny case with the full tiny preset."""
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--cases", str(TINY_CASES), "--preset", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = _check_run(out, tmp_path, ["synth-recolor", "synth-stone", "synth-night"], vggt=True)
    assert set(results["aggregate"]) == {"overall", "in_distribution", "unseen_instruction", "new_scene"}


def test_invalid_cases_file_names_the_entry(tmp_path: Path):
    bad = tmp_path / "cases.yaml"
    bad.write_text("cases:\n  - id: a\n    split: sideways\n")
    result = runner.invoke(app, ["eval", "--cases", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "cases[0] (id 'a')" in result.output and "split" in result.output
    assert not (tmp_path / "o").exists()


def test_cameras_only_exports_every_case(tmp_path: Path):
    out = tmp_path / "cams"
    result = runner.invoke(app, ["eval", "--cases", str(TINY_CASES), "--out", str(out), "--cameras-only"])
    assert result.exit_code == 0, result.output
    for case_id, count in (("synth-recolor", 3), ("synth-stone", 2), ("synth-night", 4)):
        data = json.loads((out / "cases" / case_id / "eval_cameras.json").read_text())
        assert len(data) == count and {camera["width"] for camera in data} == {64}
    assert not (out / "results.json").exists()


def test_paper_preset_without_clip_weights_fails_before_any_case(tmp_path: Path):
    result = runner.invoke(
        app, ["eval", "--cases", str(TINY_CASES), "--preset", "paper", "--device", "cpu", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "clip-vit-large-patch14" in result.output and "eval.clip_model" in result.output
    assert not (tmp_path / "o").exists()

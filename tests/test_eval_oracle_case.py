"""An `oracle` eval case: no editor; the oracle metrics reach results.json, table.md and the report."""

import json

import pytest

from rl3dedit.config import load_config
from rl3dedit.eval import load_cases, run_eval

CASES = """
name: oracle-test
cases:
  - id: oracle-recolour
    split: in_distribution
    scene: {kind: synthetic, num_views: 12, size: 32, seed: 0}
    instruction: make the centre blue
    source_caption: a red object
    target_caption: a blue object
    oracle: {kind: recolour, region_fraction: 0.5}
"""


def test_oracle_case_records_ground_truth_scores(tmp_path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(CASES)
    config = (load_config("tiny").override("views.view_size", 32).override("eval.metrics", ["time"])
              .override("recon.refit_iters", 2).override("recon.refit_color_init_iters", 2))

    def no_editor(*args, **kwargs):
        raise AssertionError("an oracle case never calls the editor")

    run = run_eval(config, load_cases(path), tmp_path / "eval", edit_fn=no_editor, env={})
    (result,) = run.results
    assert result.status == "ok", result.error
    assert result.metrics["oracle_novel_psnr"].value > 30
    assert 0 < result.metrics["oracle_novel_ssim"].value <= 1
    assert result.metrics["oracle_preservation_psnr"].value > 30
    assert result.details["oracle"]["kind"] == "recolour" and result.details["oracle"]["refit_steps"] == 2
    assert result.metrics["time_s"].value == pytest.approx(result.details["oracle"]["refit_seconds"])
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["aggregate"]["overall"]["metrics"]["oracle_novel_psnr"]["count"] == 1
    assert "oracle PSNR" in (tmp_path / "eval" / "table.md").read_text()
    assert "oracle PSNR" in (tmp_path / "eval" / "report.html").read_text()


def test_oracle_kind_is_validated(tmp_path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(CASES.replace("kind: recolour", "kind: paint"))
    with pytest.raises(ValueError, match="oracle.kind"):
        load_cases(path)

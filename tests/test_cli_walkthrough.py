"""The README's examples in order on a shipped capture, at tiny size, each command using only what the earlier ones
wrote: fit -> edit -> score -> render (views, camera path) -> eval -> train.

The whole chain is `slow` (our PyTorch rasterizer dominates on a CPU); the default run walks fit -> edit -> score ->
render with a few steps of each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.scene import read_cameras_json

runner = CliRunner()


def _run(args: list) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"rl3dedit {' '.join(map(str, args))}\n{result.output}"
    return result.output


def _walk(tmp_path: Path, shared_dir: Path, *, full: bool) -> None:
    face = shared_dir / "data" / "face"
    fit, edit = tmp_path / "face", tmp_path / "face-hat"
    small = [] if full else ["--set", "recon.max_init_points=300", "--set", "recon.eval_every=1000"]

    _run(["fit", "--data", face, "--downscale", "8" if full else "16", "--fit-iters", "20" if full else "2", *small,
          "--out", fit])
    assert list((fit / "holdout").glob("*_gt_render.png")), "fit shows its held-out views"

    _run(["edit", "--scene", fit / "scene.ply", "--cameras", fit / "cameras.json", "--instruction", "give him a hat",
          "--refit-iters", "5" if full else "1", "--view-size", "64" if full else "32", "--out", edit])
    edited = sorted((edit / "views" / "edited").glob("*.png"))
    source = sorted((edit / "views" / "source").glob("*.png"))
    cameras = read_cameras_json(edit / "cameras.json")
    assert len(edited) == len(source) == len(cameras) == 9, "cameras.json holds exactly the written views"
    metrics = json.loads((edit / "metrics.json").read_text())
    assert "VGGT verifier" in metrics["random_models"], "numbers from random models are marked"

    scored = runner.invoke(app, ["score", str(edit), "--preset", "tiny", "--json"])
    assert scored.exit_code == 0, scored.output
    report = json.loads(scored.stdout)
    assert report["num_views"] == 9 and "pairs" in report, "an edit run is scored with its own cameras"

    views = tmp_path / "face-hat-views"
    _run(["render", "--scene", edit / "edited.ply", "--cameras", edit / "cameras.json", "--grid", "--out", views])
    assert len(list((views / "views").glob("*.png"))) == 9 and (views / "grid.png").is_file()
    rescored = runner.invoke(app, ["score", str(views), "--preset", "tiny", "--json"])  # grid.png is not a view
    assert rescored.exit_code == 0, rescored.output
    assert json.loads(rescored.stdout)["num_views"] == 9 and "pairs" in json.loads(rescored.stdout)
    if not full:
        return
    path = next((face / "camera_paths").glob("*.json"))
    frames = tmp_path / "face-path"
    _run(["render", "--scene", fit / "scene.ply", "--camera-path", path, "--data", face, "--view-size", "32",
          "--out", frames])
    assert (frames / "video.mp4").is_file()

    cases = tmp_path / "cases.yaml"
    cases.write_text(yaml.safe_dump({"name": "walkthrough", "cases": [{
        "id": "face-hat", "split": "new_scene",
        "scene": {"kind": "ply", "ply": str(fit / "scene.ply"), "cameras": str(fit / "cameras.json")},
        "instruction": "give him a hat", "source_caption": "a face", "target_caption": "a face with a hat",
        "eval_views": {"kind": "held_out", "every": 16}}]}))
    evaluation = tmp_path / "eval"
    _run(["eval", "--cases", cases, "--metrics", "clip,vggt,time", "--set", "recon.refit_iters=5", "--out",
          evaluation])
    results = json.loads((evaluation / "results.json").read_text())
    assert [case["status"] for case in results["cases"]] == ["ok"]
    assert "VGGT verifier" in results["random_models"] and "random models" in (evaluation / "table.md").read_text()

    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"scenes": [{
        "name": "face", "source": {"kind": "ply", "ply": str(fit / "scene.ply"), "cameras": str(fit / "cameras.json")},
        "prompts": ["give him a hat"], "view_sets": {"auto": 1}}]}))
    grpo = tmp_path / "grpo"
    _run(["train", "--manifest", manifest, "--max-updates", "1", "--set", "views.view_size=32", "--set",
          "rl.prepare_num_steps=1", "--out", grpo])
    lora = grpo / "export" / "lora"
    assert (lora / "pytorch_lora_weights.safetensors").is_file()


def test_readme_chain_fit_edit_score_render(tmp_path: Path, shared_dir: Path) -> None:
    _walk(tmp_path, shared_dir, full=False)


@pytest.mark.slow
def test_readme_chain_fit_edit_score_render_eval_train(tmp_path: Path, shared_dir: Path) -> None:
    _walk(tmp_path, shared_dir, full=True)

"""`rl3dedit fit` on a tiny synthetic capture written to disk as a nerfstudio folder."""

import json
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement
from typer.testing import CliRunner

from provenance_check import assert_records_versions
from rl3dedit.cli.main import app
from rl3dedit.pipeline import RUN_MARKER
from rl3dedit.scene import read_cameras_json, read_ply
from rl3dedit.scene.nerfstudio import viewmats_to_opengl_c2w
from rl3dedit.synthetic import make_synthetic_capture
from rl3dedit.views import load_image, save_image

runner = CliRunner()


def write_nerfstudio_capture(folder: Path, num_views: int = 10, size: int = 24) -> None:
    """Synthetic capture as transforms.json (OpenGL c2w, PINHOLE) + images/ + sparse_pc.ply."""
    _, capture = make_synthetic_capture(num_views=num_views, size=size, seed=0, num_gaussians=200)
    (folder / "images").mkdir(parents=True)
    c2w = viewmats_to_opengl_c2w(capture.cameras.viewmats)
    K = capture.cameras.Ks[0]
    frames = []
    for i, image in enumerate(capture.images):
        save_image(image, folder / "images" / f"frame_{i:03d}.png")
        frames.append({"file_path": f"images/frame_{i:03d}.png", "transform_matrix": c2w[i].tolist()})
    meta = {"camera_model": "PINHOLE", "w": size, "h": size, "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
            "cx": float(K[0, 2]), "cy": float(K[1, 2]), "ply_file_path": "sparse_pc.ply", "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(meta))
    rows = np.empty(capture.points.shape[0], dtype=[(c, "<f4") for c in ("x", "y", "z", "red", "green", "blue")])
    for i, c in enumerate("xyz"):
        rows[c] = capture.points[:, i].numpy()
    for i, c in enumerate(("red", "green", "blue")):
        rows[c] = capture.point_colors[:, i].numpy()
    PlyData([PlyElement.describe(rows, "vertex")]).write(str(folder / "sparse_pc.ply"))


def test_fit_writes_scene_cameras_and_metrics(tmp_path: Path) -> None:
    data, out = tmp_path / "capture", tmp_path / "fitted"
    write_nerfstudio_capture(data)
    result = runner.invoke(app, ["fit", "--data", str(data), "--out", str(out), "--downscale", "1", "--fit-iters",
                                 "4", "--preset", "tiny", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [RUN_MARKER, "cameras.json", "config.yaml", "holdout",
                                                     "metrics.json", "scene.ply"]
    # Held-out views: ground truth (the capture's own image) on the left, the render on the right.
    held = sorted((out / "holdout").iterdir())
    assert [p.name for p in held] == ["view_000_gt_render.png", "view_008_gt_render.png"]
    pair = load_image(held[1])
    assert pair.shape == (3, 24, 48)
    assert (pair[:, :, :24] - load_image(data / "images" / "frame_008.png")).abs().max() < 1.5 / 255
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iters"] == 4 and metrics["num_holdout_views"] == 2 and metrics["num_train_views"] == 8
    assert_records_versions(metrics["provenance"])
    assert 0 < metrics["holdout_psnr"] < 100 and "wall_time_s" in metrics
    assert metrics["history"][0]["iteration"] == 0 and metrics["history"][0]["loss"] is None
    assert read_ply(out / "scene.ply").num_gaussians == metrics["num_gaussians"]
    assert len(read_cameras_json(out / "cameras.json")) == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder left behind"

    again = runner.invoke(app, ["fit", "--data", str(data), "--out", str(out), "--downscale", "1", "--iters", "1"])
    assert again.exit_code != 0 and "--overwrite" in " ".join(again.output.split())


def test_fit_bad_capture_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["fit", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "cannot load the capture" in text and "not a capture folder" in text and "empty" in text
    assert not (tmp_path / "o").exists()


def test_fit_reports_lpips_when_lpips_weights_are_given(tmp_path: Path) -> None:
    from rl3dedit.rewards.lpips import load_lpips, save_lpips

    data, out = tmp_path / "capture", tmp_path / "fitted"
    write_nerfstudio_capture(data, size=32)
    save_lpips(load_lpips(seed=1), tmp_path / "lpips.safetensors")
    result = runner.invoke(app, ["fit", "--data", str(data), "--out", str(out), "--downscale", "1", "--fit-iters",
                                 "2", "--set", f"rewards.lpips_weights={tmp_path / 'lpips.safetensors'}"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["holdout_lpips"] > 0 and "LPIPS" in " ".join(result.output.split())
    plain = runner.invoke(app, ["fit", "--data", str(data), "--out", str(tmp_path / "plain"), "--downscale", "1",
                                "--fit-iters", "2"])
    assert "holdout_lpips" not in json.loads((tmp_path / "plain" / "metrics.json").read_text()), plain.output

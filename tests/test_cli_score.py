"""`rl3dedit score`: folders and grids, JSON output, cameras, and clear failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.scene import Cameras, write_cameras_json

SIZE = 64  # a multiple of 16: grid cells split without the token-alignment warning


def save_png(image: torch.Tensor, path) -> None:
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def views() -> torch.Tensor:
    return torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@pytest.fixture()
def view_dir(tmp_path, views):
    folder = tmp_path / "views"
    folder.mkdir()
    for i, view in enumerate(views):
        save_png(view, folder / f"view_{i:02d}.png")
    return folder


def run(*args: str):
    return CliRunner().invoke(app, ["score", *args])


def test_folder_table_ranks_views(view_dir):
    result = run(str(view_dir), "--verifier", "tiny", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "r_D depth confidence" in result.output and "r_T" not in result.output
    assert "least consistent first: view_0" in result.output


def test_grid_with_cameras_json_reports_pose_and_ranking(tmp_path, views):
    grid = views.reshape(2, 2, 3, SIZE, SIZE).permute(2, 0, 3, 1, 4).reshape(3, 2 * SIZE, 2 * SIZE)
    save_png(grid, tmp_path / "grid.png")
    viewmats = torch.eye(4).repeat(4, 1, 1)
    viewmats[:, 0, 3] = torch.arange(4.0)
    K = torch.tensor([[50.0, 0, SIZE / 2], [0, 50.0, SIZE / 2], [0, 0, 1]])
    write_cameras_json(Cameras(viewmats, K.expand(4, 3, 3).clone(), SIZE, SIZE), tmp_path / "cameras.json")
    result = run(str(tmp_path / "grid.png"), "--rows", "2", "--cols", "2", "--cameras", str(tmp_path / "cameras.json"),
                 "--verifier", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["num_views"] == 4 and set(report["scores"]) == {"depth", "point", "pose", "total"}
    assert 0 < report["scores"]["pose"] <= 1 and len(report["pairs"]) == 3
    assert sorted(report["weakest_views"]) == sorted(r["name"] for r in report["views"])
    means = {r["name"]: (r["depth_confidence"] + r["point_confidence"]) / 2 for r in report["views"]}
    assert [means[n] for n in report["weakest_views"]] == sorted(means.values())


def test_unreadable_input_and_camera_mismatch_exit_non_zero(tmp_path, view_dir):
    (tmp_path / "broken.png").write_text("not an image")
    result = run(str(tmp_path / "broken.png"), "--device", "cpu")
    assert result.exit_code != 0 and "cannot read views" in result.output
    assert run(str(tmp_path / "missing"), "--device", "cpu").exit_code != 0
    viewmats = torch.eye(4).repeat(2, 1, 1)
    write_cameras_json(Cameras(viewmats, torch.eye(3).repeat(2, 1, 1), SIZE, SIZE), tmp_path / "two.json")
    mismatch = run(str(view_dir), "--cameras", str(tmp_path / "two.json"), "--device", "cpu")
    assert mismatch.exit_code != 0 and "2 cameras but there are 4 views" in mismatch.output


def test_paper_verifier_without_weights_says_what_to_pass(view_dir, tmp_path):
    result = run(str(view_dir), "--verifier", "paper", "--device", "cpu")
    assert result.exit_code != 0 and "--verifier-model" in result.output
    missing = run(str(view_dir), "--verifier", "paper", "--verifier-weights", str(tmp_path / "model.pt"),
                  "--device", "cpu")
    assert missing.exit_code != 0 and "model.pt" in missing.output

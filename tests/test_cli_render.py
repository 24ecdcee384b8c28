"""`rl3dedit render` from a .ply and cameras.json."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.scene import read_cameras_json, write_cameras_json, write_ply
from rl3dedit.synthetic import make_synthetic_scene
from rl3dedit.views import load_image, orbit_cameras

runner = CliRunner()


@pytest.fixture()
def scene_files(tmp_path: Path) -> tuple[Path, Path]:
    write_ply(make_synthetic_scene(200, seed=0), tmp_path / "scene.ply")
    cameras = orbit_cameras(12, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=48, height=32, fov_deg=50.0)
    write_cameras_json(cameras, tmp_path / "cameras.json")
    return tmp_path / "scene.ply", tmp_path / "cameras.json"


def test_render_views_and_grid(tmp_path: Path, scene_files: tuple[Path, Path]) -> None:
    ply, cams = scene_files
    out = tmp_path / "renders"
    result = runner.invoke(app, ["render", "--scene", str(ply), "--cameras", str(cams), "--out", str(out),
                                 "--views", "4", "--grid", "--size", "24", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in (out / "views").glob("view_*.png"))
    assert len(pngs) == 4
    cams = read_cameras_json(out / "cameras.json")
    assert len(cams) == 4 and (cams.width, cams.height) == (24, 16)  # exactly the rendered views, at their size
    view = load_image(out / "views" / pngs[0])
    assert view.shape == (3, 16, 24)
    assert view.std() > 0.01, "the render is not blank"
    grid = load_image(out / "grid.png")
    assert grid.shape[0] == 3 and grid.shape[1] >= 2 * 16 and grid.shape[2] >= 2 * 24


def test_render_missing_scene_fails_clearly(tmp_path: Path, scene_files: tuple[Path, Path]) -> None:
    _, cams = scene_files
    result = runner.invoke(app, ["render", "--scene", str(tmp_path / "nope.ply"), "--cameras", str(cams),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "nope.ply" in text and "no such PLY file" in text
    assert not (tmp_path / "o").exists()


def test_render_never_replaces_a_foreign_folder(tmp_path: Path, scene_files: tuple[Path, Path]) -> None:
    ply, cams = scene_files
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["render", "--scene", str(ply), "--cameras", str(cams), "--out", str(out), "--views", "2", "--size", "16",
            "--device", "cpu", "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "not written by rl3dedit" in " ".join(result.output.split())
    assert (out / "notes.txt").read_text() == "keep me"
    fresh = tmp_path / "renders"
    assert runner.invoke(app, args[:6] + [str(fresh)] + args[7:]).exit_code == 0
    assert runner.invoke(app, args[:6] + [str(fresh)] + args[7:]).exit_code == 0, "an earlier run may be replaced"


def test_render_renders_each_camera_once(tmp_path: Path, scene_files: tuple[Path, Path]) -> None:
    ply, cams = scene_files
    out = tmp_path / "renders"
    result = runner.invoke(app, ["render", "--scene", str(ply), "--cameras", str(cams), "--out", str(out),
                                 "--views", "40", "--view-size", "16"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "views").iterdir())
    assert len(names) == 12 and len({name.split("_cam")[1] for name in names}) == 12  # 12 cameras, no duplicate
    assert len(read_cameras_json(out / "cameras.json")) == 12


def test_render_camera_path_writes_frames_and_video(tmp_path: Path, shared_dir: Path) -> None:
    import json

    face = shared_dir / "data" / "face"
    path = next((face / "camera_paths").glob("*.json"))
    frames = len(json.loads(path.read_text())["camera_path"])
    write_ply(make_synthetic_scene(50, seed=0), tmp_path / "scene.ply")
    out = tmp_path / "path"
    result = runner.invoke(app, ["render", "--scene", str(tmp_path / "scene.ply"), "--camera-path", str(path),
                                 "--data", str(face), "--view-size", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list((out / "frames").glob("frame_*.png"))) == frames
    assert (out / "video.mp4").stat().st_size > 0 and len(read_cameras_json(out / "cameras.json")) == frames
    no_data = runner.invoke(app, ["render", "--scene", str(tmp_path / "scene.ply"), "--camera-path", str(path),
                                  "--out", str(tmp_path / "x")])
    assert no_data.exit_code != 0 and "--data" in " ".join(no_data.output.split())

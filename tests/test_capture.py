"""rl3dedit capture: COLMAP posing of real photos (pose error against the shipped poses), video sampling, errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rl3dedit.capture import (
    CaptureConfig,
    CaptureError,
    is_unposed_folder,
    pose_errors,
    read_capture_report,
    run_capture,
    sample_video,
    umeyama,
)
from rl3dedit.capture.video import pick_sharpest, sharpness
from rl3dedit.cli.main import app
from rl3dedit.scene import load_cameras, load_capture, look_at_viewmats


def _face_subset(shared_dir: Path, folder: Path, count: int = 12, size: int = 256) -> list[str]:
    """Every 5th face frame, resized: a small unposed photo folder with enough overlap to pose."""
    source = shared_dir / "data" / "face" / "images"
    names = sorted(p.name for p in source.iterdir())[::5][:count]
    folder.mkdir(parents=True)
    for name in names:
        Image.open(source / name).convert("RGB").resize((size, size), Image.LANCZOS).save(folder / name, quality=95)
    return names


@pytest.mark.shared
def test_capture_poses_a_face_subset_close_to_the_shipped_poses(shared_dir, tmp_path):
    photos = tmp_path / "photos"
    names = _face_subset(shared_dir, photos)
    assert is_unposed_folder(photos)
    stages = []
    report = run_capture(photos, tmp_path / "data", CaptureConfig(num_threads=2),
                         progress=lambda stage, done, total: stages.append(stage))
    assert report.registered == names and report.unregistered == [] and report.matcher == "exhaustive"
    assert {"SIFT features", "exhaustive matching", "incremental mapping"} <= set(stages)
    assert not is_unposed_folder(tmp_path / "data")
    assert read_capture_report(tmp_path / "data").registered == names

    capture = load_capture(tmp_path / "data")  # the same loader fit and edit --data use
    assert len(capture) == len(names) and capture.points is not None and capture.points.shape[0] > 100
    reference = load_cameras(shared_dir / "data" / "face")
    index = {p.name: i for i, p in enumerate(reference.image_paths)}
    order = [index[p.name] for p in capture.cameras.image_paths]
    errors = pose_errors(capture.cameras.viewmats, reference.viewmats[order])
    # Measured: ~2.4 deg (the shipped model's principal point is 22 px off centre, ours is fixed at the centre) and
    # <2% of the camera ring's radius. A wrong convention or a failed model gives tens of degrees.
    assert errors["rotation_error_deg_max"] < 5.0
    assert errors["centre_error_rel_max"] < 0.05


def test_umeyama_recovers_a_known_similarity():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(20, 3, generator=generator, dtype=torch.float64)
    axis = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    angle = 0.7
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / axis.norm()
    rotation = torch.eye(3, dtype=torch.float64) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    moved = 2.5 * points @ rotation.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    scale, r, t = umeyama(points, moved)
    assert abs(float(scale) - 2.5) < 1e-9
    assert torch.allclose(r, rotation, atol=1e-9) and torch.allclose(t, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))


def test_pose_errors_are_zero_under_a_similarity_and_see_a_rotated_camera():
    angles = torch.linspace(0, 2 * np.pi, 9)[:-1]
    eyes = torch.stack([3 * torch.cos(angles), 3 * torch.sin(angles), 0.5 * torch.ones(8)], dim=1)
    reference = look_at_viewmats(eyes, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    # The same cameras in another world: world_rec = (R world_ref + t) / s  =>  viewmat_rec = viewmat_ref @ T^-1.
    similarity = torch.eye(4, dtype=torch.float64)
    similarity[:3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) / 3.0
    similarity[:3, 3] = torch.tensor([0.2, 0.1, -0.4])
    recovered = reference.double() @ torch.linalg.inv(similarity)
    recovered[:, :3, :] /= torch.linalg.norm(recovered[:, :3, :3], dim=(1, 2), keepdim=True) / np.sqrt(3)
    errors = pose_errors(recovered, reference)
    # arccos near 1 turns float32 rounding of the look-at rotations into a few hundredths of a degree
    assert errors["rotation_error_deg_max"] < 0.05 and errors["centre_error_rel_max"] < 1e-5
    tilted = recovered.clone()
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    tilted[0, :3, :] = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64) @ tilted[0, :3, :]
    assert abs(pose_errors(tilted, reference)["rotation_error_deg_max"] - 10.0) < 1.0


def test_video_sampling_keeps_the_sharpest_frame_of_each_window(tmp_path):
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    sharp = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    blurred = np.asarray(Image.fromarray(sharp).resize((8, 8)).resize((64, 64), Image.BILINEAR))
    frames = [blurred] * 12
    for i in (1, 6, 10):  # one sharp frame per window of 4
        frames[i] = sharp
    with imageio.get_writer(tmp_path / "v.mp4", fps=10, codec="libx264", quality=10, macro_block_size=1,
                            ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)
    assert sharpness(sharp) > 5 * sharpness(blurred)
    written = sample_video(tmp_path / "v.mp4", tmp_path / "frames", num_frames=3)
    assert [p.name for p in written] == ["frame_00001.jpg", "frame_00002.jpg", "frame_00003.jpg"]
    for path in written:
        assert sharpness(np.asarray(Image.open(path))) > 3 * sharpness(blurred)
    assert pick_sharpest([1, 5, 2, 0, 9, 3], 2) == [1, 4] and pick_sharpest([1.0, 2.0], 5) == [0, 1]


def test_capture_refuses_too_few_and_mixed_size_photos(tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32)).save(few / f"{i}.png")
    with pytest.raises(CaptureError, match="2 image"):
        run_capture(few, tmp_path / "out")
    Image.new("RGB", (40, 32)).save(few / "odd.png")
    with pytest.raises(CaptureError, match=r"mixed sizes.*32x32: 2.*40x32: 1 \(e.g. odd.png\)"):
        run_capture(few, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.shared
def test_capture_names_the_photos_it_could_not_register(shared_dir, tmp_path):
    photos = tmp_path / "photos"
    _face_subset(shared_dir, photos)
    rng = np.random.default_rng(1)
    for i in range(13):  # smooth blobs: few features, nothing in common with the face
        blob = Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8)).resize((256, 256), Image.BICUBIC)
        blob.save(photos / f"noise_{i:02d}.jpg")
    result = CliRunner().invoke(app, ["capture", str(photos), "--out", str(tmp_path / "data")])
    assert result.exit_code == 1, (result.output, result.exception)
    message = " ".join(result.output.split())
    assert "registered only 12 of the 25 photos (need 13)" in message, message
    assert "not registered: noise_00.jpg, noise_01.jpg" in message
    assert not (tmp_path / "data").exists()


def test_vggt_route_writes_a_capture_the_loader_reads(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray((rng.random((42, 56, 3)) * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    config = CaptureConfig(poses="vggt", vggt_model="tiny")
    report = run_capture(photos, tmp_path / "data", config)
    capture = load_capture(tmp_path / "data")
    assert len(capture) == 3 and report.registered == ["p0.png", "p1.png", "p2.png"]
    assert (capture.cameras.width, capture.cameras.height) == tuple(report.image_size)
    assert capture.points is not None and capture.points.shape[0] == report.num_points > 0
    with pytest.raises(FileNotFoundError, match="--poses vggt needs VGGT-1B weights"):
        run_capture(photos, tmp_path / "data2", CaptureConfig(poses="vggt", vggt_model=str(tmp_path / "none.pt")))


@pytest.mark.shared
def test_a_scene_source_on_bare_photos_poses_them_once_and_reuses_the_capture(shared_dir, tmp_path):
    from rl3dedit.config import load_config
    from rl3dedit.pipeline.source import CaptureSource, load_scene_source

    photos = tmp_path / "photos"
    names = _face_subset(shared_dir, photos)
    config = load_config("tiny")
    loaded = load_scene_source(CaptureSource(path=str(photos)), config, cameras_only=True, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in loaded.cameras.image_paths) == names
    (posed,) = (tmp_path / "cache" / "captures").iterdir()
    assert read_capture_report(posed).registered == names
    stamp = (posed / "capture.json").stat().st_mtime_ns
    again = load_scene_source(CaptureSource(path=str(photos)), config, cameras_only=True, cache_dir=tmp_path / "cache")
    assert (posed / "capture.json").stat().st_mtime_ns == stamp  # reused, not posed again
    torch.testing.assert_close(again.cameras.viewmats, loaded.cameras.viewmats)


@pytest.mark.slow
@pytest.mark.shared
def test_edit_runs_end_to_end_on_a_folder_of_bare_photos(shared_dir, tmp_path, monkeypatch):
    from rl3dedit.config import load_config
    from rl3dedit.pipeline import run_edit
    from rl3dedit.pipeline.source import CaptureSource

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    _face_subset(shared_dir, photos)
    report = run_edit(load_config("tiny"), instruction="give him a hat", out_dir=tmp_path / "run",
                      source=CaptureSource(path=str(photos)))
    assert (tmp_path / "run" / "edited.ply").is_file() and report.edited_views.shape[0] == 9
    assert any((tmp_path / "cache" / "rl3dedit" / "captures").iterdir())

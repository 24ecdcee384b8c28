"""COLMAP models: text and binary written by pycolmap, read back; projections match COLMAP's own observations."""

from __future__ import annotations

import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image

from rl3dedit.scene import load_cameras, load_capture, read_colmap
from rl3dedit.scene.distortion import distort_normalized


def _synthetic(model: str, params: list[float], num_frames: int = 6) -> pycolmap.Reconstruction:
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs = 1
    options.num_cameras_per_rig = 1
    options.num_frames_per_rig = num_frames
    options.num_points3D = 30
    options.camera_model_id = getattr(pycolmap.CameraModelId, model)
    options.camera_params = params
    options.camera_width, options.camera_height = 100, 80
    return pycolmap.synthesize_dataset(options)


def _observations(recon: pycolmap.Reconstruction, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    image = next(i for i in recon.images.values() if i.name == name)
    pairs = [(p.xy, recon.points3D[p.point3D_id].xyz) for p in image.points2D if p.has_point3D()]
    return torch.tensor(np.array([a for a, _ in pairs])), torch.tensor(np.array([b for _, b in pairs]))


@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_round_trip_and_projection(tmp_path, fmt):
    recon = _synthetic("PINHOLE", [90.0, 95.0, 48.0, 41.0])
    model_dir = tmp_path / "sparse" / "0"
    model_dir.mkdir(parents=True)
    getattr(recon, f"write_{fmt}")(str(model_dir))
    model = read_colmap(tmp_path)
    cams = model.records.cameras
    names = sorted(i.name for i in recon.images.values())
    assert [p.name for p in cams.image_paths] == names
    assert cams.image_paths[0].parent == tmp_path / "images"
    assert (cams.width, cams.height) == (100, 80) and model.records.distortion is None
    torch.testing.assert_close(cams.Ks[0], torch.tensor([[90.0, 0, 48.0], [0, 95.0, 41.0], [0, 0, 1]]))
    assert model.points is not None and model.points.points.shape == (30, 3)
    for i, name in enumerate(names):
        xy, xyz = _observations(recon, name)
        cam = xyz.float() @ cams.viewmats[i, :3, :3].T + cams.viewmats[i, :3, 3]
        uv = cam[:, :2] / cam[:, 2:] * torch.tensor([90.0, 95.0]) + torch.tensor([48.0, 41.0])
        assert (cam[:, 2] > 0).all()
        torch.testing.assert_close(uv, xy.float(), atol=1e-3, rtol=0)


def test_radial_distortion_maps_to_opencv_coefficients(tmp_path):
    recon = _synthetic("SIMPLE_RADIAL", [90.0, 50.0, 40.0, 0.08], num_frames=3)
    recon.write_binary(str(tmp_path))
    model = read_colmap(tmp_path)
    torch.testing.assert_close(model.records.distortion, torch.tensor([[0.08, 0.0, 0.0, 0.0]] * 3))
    cams = model.records.cameras
    xy, xyz = _observations(recon, cams.image_paths[0].name)
    cam = xyz @ cams.viewmats[0, :3, :3].double().T + cams.viewmats[0, :3, 3].double()
    distorted = distort_normalized(cam[:, :2] / cam[:, 2:], model.records.distortion[0].double())
    torch.testing.assert_close(distorted * 90.0 + torch.tensor([50.0, 40.0], dtype=torch.float64), xy, atol=1e-3, rtol=0)
    assert load_cameras(tmp_path / "cameras.bin").Ks.shape == (3, 3, 3)  # distorted: a warning, not an error


def test_unsupported_model_raises(tmp_path):
    recon = _synthetic("OPENCV_FISHEYE", [90.0, 90.0, 50.0, 40.0, 0.01, 0.0, 0.0, 0.0], num_frames=2)
    recon.write_text(str(tmp_path))
    with pytest.raises(ValueError, match=rf"{tmp_path}.*OPENCV_FISHEYE is not supported"):
        read_colmap(tmp_path)


def test_missing_model_and_corrupt_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}: no COLMAP model"):
        read_colmap(tmp_path)
    (tmp_path / "cameras.txt").write_text("1 PINHOLE not numbers\n")
    (tmp_path / "images.txt").write_text("")
    (tmp_path / "points3D.txt").write_text("")
    with pytest.raises(ValueError, match=rf"{tmp_path}"):
        read_colmap(tmp_path)


def test_colmap_capture_folder(tmp_path):
    recon = _synthetic("PINHOLE", [90.0, 95.0, 48.0, 41.0], num_frames=4)
    (tmp_path / "sparse" / "0").mkdir(parents=True)
    recon.write_binary(str(tmp_path / "sparse" / "0"))
    (tmp_path / "images").mkdir()
    names = sorted(i.name for i in recon.images.values())
    for k, name in enumerate(names[:-1]):
        Image.new("RGB", (100, 80), (10 * k, 0, 0)).save(tmp_path / "images" / name)
    with pytest.raises(FileNotFoundError, match=rf"1 of 4 image files are missing: .*{names[-1]}"):
        load_capture(tmp_path)
    Image.new("RGB", (50, 80)).save(tmp_path / "images" / names[-1])
    with pytest.raises(ValueError, match=rf"{names[-1]}: image is 50x80 but .* says 100x80"):
        load_capture(tmp_path)
    Image.new("RGB", (100, 80), (30, 0, 0)).save(tmp_path / "images" / names[-1])
    capture = load_capture(tmp_path, downscale=2)
    assert capture.images.shape == (4, 3, 40, 50) and capture.name == tmp_path.name
    torch.testing.assert_close(capture.cameras.Ks[0], torch.tensor([[45.0, 0, 24.0], [0, 47.5, 20.5], [0, 0, 1]]))
    assert capture.images[1, 0].mean() == pytest.approx(10 / 255, abs=1e-6)
    assert capture.points is not None and capture.points.shape == (30, 3)

"""nerfstudio transforms.json: OpenGL -> OpenCV on a constructed example, intrinsics rules, camera paths, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from rl3dedit.scene import load_capture, look_at_viewmats, read_camera_path, read_transforms_json
from rl3dedit.scene.capture import undistort_images
from rl3dedit.scene.nerfstudio import dataparser_transform, viewmats_to_opengl_c2w

W, H = 16, 12


def _pose(rotation: list[list[float]], position: list[float]) -> list[list[float]]:
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = position
    return m.tolist()


def _write_capture(root, frames, **shared) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    meta = {"w": W, "h": H, "fl_x": 20.0, "fl_y": 22.0, "cx": 8.5, "cy": 5.5, "camera_model": "OPENCV", **shared}
    meta["frames"] = frames
    (root / "transforms.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(0)
    for frame in frames:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(root / frame["file_path"])


def _project(viewmat: torch.Tensor, K: torch.Tensor, point: list[float]) -> tuple[float, float, float]:
    cam = viewmat[:3, :3] @ torch.tensor(point) + viewmat[:3, 3]
    return float(K[0, 0] * cam[0] / cam[2] + K[0, 2]), float(K[1, 1] * cam[1] / cam[2] + K[1, 2]), float(cam[2])


def test_opengl_pose_becomes_opencv_viewmat(tmp_path):
    # Frame b: OpenGL camera at z = 5 with identity rotation looks down world -z, image up = world +y.
    # Frame a: per-frame focal override, rotated 90 degrees about world z.
    rot_z = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    frames = [
        {"file_path": "images/b.png", "transform_matrix": _pose(np.eye(3).tolist(), [0.0, 0.0, 5.0])},
        {"file_path": "images/a.png", "transform_matrix": _pose(rot_z, [0.0, 0.0, 4.0]), "fl_x": 30.0, "fl_y": 31.0},
    ]
    _write_capture(tmp_path, frames, applied_transform=[[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, 0]])
    ns = read_transforms_json(tmp_path)
    cams = ns.records.cameras
    assert [p.name for p in cams.image_paths] == ["a.png", "b.png"]  # sorted by file_path, like nerfstudio
    assert ns.records.distortion is None
    assert ns.applied_transform.shape == (3, 4) and ns.ply_file_path is None
    Ka, Kb = cams.Ks
    assert (Ka[0, 0], Ka[1, 1], Kb[0, 0], Kb[1, 1]) == (30.0, 31.0, 20.0, 22.0)
    u, v, z = _project(cams.viewmats[1], Kb, [0.0, 0.0, 0.0])
    assert (u, v, z) == pytest.approx((8.5, 5.5, 5.0))
    u, v, _ = _project(cams.viewmats[1], Kb, [1.0, 0.0, 0.0])
    assert u > 8.5 and v == pytest.approx(5.5)  # world +x is image right
    u, v, _ = _project(cams.viewmats[1], Kb, [0.0, 1.0, 0.0])
    assert v < 5.5 and u == pytest.approx(8.5)  # world +y is image up (OpenCV y down)
    u, v, z = _project(cams.viewmats[0], Ka, [0.0, 1.0, 0.0])
    assert u > 8.5 and z == pytest.approx(4.0)  # camera x axis is world +y after the 90-degree turn
    torch.testing.assert_close(cams.centers[1], torch.tensor([0.0, 0.0, 5.0]))
    torch.testing.assert_close(viewmats_to_opengl_c2w(cams.viewmats).float(), ns.c2w_opengl.float())


def test_distortion_is_undistorted_by_load_capture(tmp_path):
    frames = [{"file_path": "images/a.png", "transform_matrix": _pose(np.eye(3).tolist(), [0.0, 0.0, 3.0])}]
    _write_capture(tmp_path, frames, k1=0.2, k2=0.01, p1=0.003, p2=-0.002)
    ns = read_transforms_json(tmp_path / "transforms.json")
    torch.testing.assert_close(ns.records.distortion, torch.tensor([[0.2, 0.01, 0.003, -0.002]]))
    capture = load_capture(tmp_path)
    raw = torch.from_numpy(np.asarray(Image.open(tmp_path / "images/a.png"), dtype=np.float32) / 255).permute(2, 0, 1)
    expected = undistort_images(raw[None], ns.records.cameras.Ks, ns.records.distortion)
    torch.testing.assert_close(capture.images, expected)
    assert not torch.allclose(capture.images, raw[None])
    assert capture.points is None and capture.render_path is None


def test_blender_variant_camera_angle_x(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (W, H)).save(tmp_path / "images" / "r_0.png")
    meta = {"camera_angle_x": math.radians(90), "frames": [{"file_path": "images/r_0", "transform_matrix": _pose(np.eye(3).tolist(), [0, 0, 2])}]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    cams = read_transforms_json(tmp_path).records.cameras
    assert (cams.width, cams.height) == (W, H)
    assert float(cams.Ks[0, 0, 0]) == pytest.approx(W / 2) and float(cams.Ks[0, 1, 2]) == H / 2
    assert cams.image_paths[0].name == "r_0.png"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"camera_model": "OPENCV_FISHEYE"}, "camera_model 'OPENCV_FISHEYE' is not supported"),
        ({"k3": 0.01}, "k3 = 0.01 is not supported"),
        ({"fl_x": None}, "no focal length"),
    ],
)
def test_unsupported_intrinsics_raise(tmp_path, change, message):
    frames = [{"file_path": "images/a.png", "transform_matrix": _pose(np.eye(3).tolist(), [0.0, 0.0, 3.0])}]
    _write_capture(tmp_path, frames, **change)
    if change.get("fl_x", 1) is None:
        meta = json.loads((tmp_path / "transforms.json").read_text())
        del meta["fl_x"], meta["fl_y"]
        (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"transforms.json frame 0 .*{message}"):
        read_transforms_json(tmp_path)


def test_structural_errors(tmp_path):
    path = tmp_path / "transforms.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"{path}: not valid JSON"):
        read_transforms_json(path)
    path.write_text(json.dumps({"frames": []}))
    with pytest.raises(ValueError, match=rf"{path}: expected .* non-empty 'frames'"):
        read_transforms_json(path)
    path.write_text(json.dumps({"fl_x": 1, "w": 4, "h": 4, "frames": [{"file_path": "a.png", "transform_matrix": [[1, 0], [0, 1]]}]}))
    with pytest.raises(ValueError, match=r"frame 0 \(a.png\): expected a 4x4"):
        read_transforms_json(path)
    frames = [{"file_path": "images/a.png", "transform_matrix": _pose(np.eye(3).tolist(), [0, 0, 3]), "fl_y": float("nan")}]
    _write_capture(tmp_path, frames)
    with pytest.raises(ValueError, match=rf"{path}: .*NaN or inf"):
        read_transforms_json(tmp_path)
    frames = [
        {"file_path": "images/a.png", "transform_matrix": _pose(np.eye(3).tolist(), [0, 0, 3]), "w": 8},
        {"file_path": "images/b.png", "transform_matrix": _pose(np.eye(3).tolist(), [0, 0, 4])},
    ]
    _write_capture(tmp_path, frames)
    with pytest.raises(ValueError, match="different image sizes"):
        read_transforms_json(tmp_path)


def test_dataparser_transform_orients_centres_and_scales():
    eyes = torch.tensor([[3.0, 1.0, 0.5], [-1.0, 2.5, 0.7], [0.5, -3.0, 0.2], [-2.0, -1.0, 1.0]], dtype=torch.float64)
    up = torch.nn.functional.normalize(torch.tensor([0.2, -0.3, 1.0], dtype=torch.float64), dim=0)
    c2w = viewmats_to_opengl_c2w(look_at_viewmats(eyes, torch.zeros(3, dtype=torch.float64), up))
    transform, scale = dataparser_transform(c2w)
    rotation = transform[:, :3]
    mean_up = torch.nn.functional.normalize(c2w[:, :3, 1].mean(0), dim=0)
    torch.testing.assert_close(rotation @ mean_up, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    moved = scale * (eyes @ rotation.T + transform[:, 3])
    torch.testing.assert_close(moved.mean(0), torch.zeros(3, dtype=torch.float64))
    assert float(moved.abs().max()) == pytest.approx(1.0)


def test_camera_path_maps_back_to_capture_world(tmp_path):
    eyes = torch.tensor([[3.0, 0.0, 1.0], [0.0, 3.0, 1.2], [-3.0, 0.0, 0.8], [0.0, -3.0, 1.0]])
    c2w = viewmats_to_opengl_c2w(look_at_viewmats(eyes, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    frames = [{"file_path": f"images/{i}.png", "transform_matrix": c2w[i].tolist()} for i in range(4)]
    _write_capture(tmp_path, frames)
    ns = read_transforms_json(tmp_path)
    transform, scale = dataparser_transform(ns.c2w_opengl)
    # A path whose poses are the capture's own poses expressed in the dataparser frame must map back onto them.
    dp = ns.c2w_opengl.clone()
    dp[:, :3, :3] = transform[:, :3] @ dp[:, :3, :3]
    dp[:, :3, 3] = scale * (ns.c2w_opengl[:, :3, 3] @ transform[:, :3].T + transform[:, 3])
    entries = [{"camera_to_world": m.reshape(-1).tolist(), "fov": 60.0, "aspect": 1.0} for m in dp]
    path_file = tmp_path / "path.json"
    path_file.write_text(json.dumps({"camera_type": "perspective", "render_width": 40, "render_height": 30, "camera_path": entries}))
    path = read_camera_path(path_file, ns)
    torch.testing.assert_close(path.viewmats, ns.records.cameras.viewmats, atol=1e-5, rtol=0)
    assert path.Ks[0, 1, 1] == pytest.approx(15 / math.tan(math.radians(30)))
    assert (path.width, path.height) == (40, 30)
    # A saved dataparser_transforms.json takes precedence over recomputing it.
    (tmp_path / "dataparser_transforms.json").write_text(json.dumps({"transform": torch.eye(4)[:3].tolist(), "scale": 1.0}))
    identity = read_camera_path(path_file, ns)
    torch.testing.assert_close(identity.centers, dp[:, :3, 3].float(), atol=1e-5, rtol=0)
    path_file.write_text(json.dumps({"camera_type": "fisheye", "render_width": 4, "render_height": 4, "camera_path": entries}))
    with pytest.raises(ValueError, match=rf"{path_file}: camera_type 'fisheye' is not supported"):
        read_camera_path(path_file, ns)

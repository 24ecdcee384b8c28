"""Image files paired with a distorted camera file are undistorted with the file's own model (issue 18):
`rl3dedit score` on raw frames + transforms.json scores like `load_capture`'s undistorted frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.rewards import SfMReward
from rl3dedit.scene import load_capture
from rl3dedit.scene.distortion import distort_normalized
from rl3dedit.scene.nerfstudio import viewmats_to_opengl_c2w

FRAMES = [f"frame_{i:05d}.jpg" for i in range(10, 37, 3)]  # 9 neighbouring frames of the face capture
SHUFFLE = [3, 0, 6, 1, 8, 2, 4, 7, 5]

pytestmark = pytest.mark.slow  # ~45 s: the whole 65-frame capture is loaded and SIFT runs on 256-px views


@pytest.fixture(scope="module")
def face(shared_dir):
    pytest.importorskip("pycolmap")
    root = shared_dir / "data" / "face"
    capture = load_capture(root, downscale=2)
    names = [p.name for p in capture.cameras.image_paths]
    index = [names.index(frame) for frame in FRAMES]
    views, cameras = capture.images[index], capture.cameras[index]
    real, shuffled = SfMReward().score(torch.stack([views, views[SHUFFLE]]), cameras).total.tolist()
    return root, views, cameras, real, shuffled


def _save(image: torch.Tensor, path) -> None:
    Image.fromarray((image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def _score(folder, cameras_file, *extra: str) -> float:
    result = CliRunner().invoke(app, ["score", str(folder), "--cameras", str(cameras_file), "--reward", "sfm",
                                      "--device", "cpu", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["score"]


def _distort(image: torch.Tensor, K: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """A pinhole image as a lens with OpenCV `coeffs` would record it: each distorted pixel samples the pinhole
    image at the undistorted point, found by fixed-point iteration of the forward model."""
    h, w = image.shape[-2:]
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    xy_d = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]], dim=-1).double()
    xy = xy_d.clone()
    for _ in range(30):
        xy = xy - (distort_normalized(xy, coeffs.double()) - xy_d)
    grid = torch.stack([2 * (xy[..., 0] * K[0, 0] + K[0, 2]) / w - 1, 2 * (xy[..., 1] * K[1, 1] + K[1, 2]) / h - 1], -1)
    return F.grid_sample(image[None], grid[None].float(), mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


def test_raw_frames_with_the_capture_transforms_score_like_undistorted_frames(face, tmp_path):
    root, _, _, real, shuffled = face
    assert real > shuffled + 0.3
    folder = tmp_path / "raw"
    folder.mkdir()
    for frame in FRAMES:  # the files as captured (distorted), at the views' 256 px, names kept
        with Image.open(root / "images" / frame) as image:
            image.reduce(2).save(folder / frame.replace(".jpg", ".png"))
    assert _score(folder, root / "transforms.json") == pytest.approx(real, abs=0.05)


def test_a_strong_known_distortion_is_undone_with_the_files_model(face, tmp_path):
    _, views, cameras, real, _ = face
    coeffs = torch.tensor([-0.2, 0.05, 0.002, -0.002])
    K = cameras.Ks[0]
    c2w = viewmats_to_opengl_c2w(cameras.viewmats)
    meta = {"w": cameras.width, "h": cameras.height, "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
            "cx": float(K[0, 2]), "cy": float(K[1, 2]), "camera_model": "OPENCV", "frames": [],
            **dict(zip(("k1", "k2", "p1", "p2"), coeffs.tolist()))}
    for i, frame in enumerate(FRAMES):
        name = frame.replace(".jpg", ".png")
        _save(_distort(views[i], cameras.Ks[i], coeffs), tmp_path / name)
        meta["frames"].append({"file_path": name, "transform_matrix": c2w[i].tolist()})
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    undistorted = _score(tmp_path, tmp_path / "transforms.json")
    as_pinhole = _score(tmp_path, tmp_path / "transforms.json", "--pinhole-views")  # what score did before
    assert undistorted == pytest.approx(real, abs=0.05)
    assert undistorted > as_pinhole + 0.1

"""INRIA cameras.json: layout, lossless round trip, errors."""

from __future__ import annotations

import json

import pytest
import torch

from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats, read_cameras_json, write_cameras_json


def _cameras(cx_offset: float = 0.0) -> Cameras:
    eyes = torch.tensor([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [-2.0, 0.5, 0.5]])
    viewmats = look_at_viewmats(eyes, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    Ks = intrinsics_from_fov(50.0, 40, 30).expand(3, 3, 3).clone()
    Ks[:, 0, 2] += cx_offset
    return Cameras(viewmats, Ks, 40, 30)


def test_layout_follows_inria(tmp_path):
    cams = _cameras()
    path = write_cameras_json(cams, tmp_path / "cameras.json")
    entries = json.loads(path.read_text())
    assert set(entries[0]) == {"id", "img_name", "width", "height", "position", "rotation", "fx", "fy"}
    torch.testing.assert_close(torch.tensor(entries[1]["position"]), torch.tensor([0.0, 2.0, 1.0]))
    c2w_rotation = torch.tensor(entries[1]["rotation"])
    forward = c2w_rotation[:, 2]  # third column: the camera z axis in world coordinates
    torch.testing.assert_close(forward, torch.nn.functional.normalize(-torch.tensor([0.0, 2.0, 1.0]), dim=0))


@pytest.mark.parametrize("cx_offset", [0.0, 1.5])
def test_round_trip(tmp_path, cx_offset):
    cams = _cameras(cx_offset)
    back = read_cameras_json(write_cameras_json(cams, tmp_path / "cameras.json"))
    torch.testing.assert_close(back.viewmats, cams.viewmats, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.Ks, cams.Ks)
    assert (back.width, back.height) == (40, 30)


def test_image_paths_from_img_name(tmp_path):
    cams = _cameras()
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        (tmp_path / "imgs" / f"{i:05d}.png").write_bytes(b"")
    back = read_cameras_json(write_cameras_json(cams, tmp_path / "cameras.json"), images_dir=tmp_path / "imgs")
    assert [p.name for p in back.image_paths] == ["00000.png", "00001.png", "00002.png"]


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "cameras.json"
    path.write_text(json.dumps({"frames": []}))
    with pytest.raises(ValueError, match=rf"{path}: expected a non-empty JSON list"):
        read_cameras_json(path)
    path.write_text(json.dumps([{"width": 4, "height": 4, "position": [0, 0, 0]}]))
    with pytest.raises(ValueError, match=rf"{path}: camera 0 is missing keys: rotation, fx, fy"):
        read_cameras_json(path)

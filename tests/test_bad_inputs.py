"""Impossible or malformed inputs are refused at the loaders with one error naming the file, the frame and the value
(issue 17 items 6, 8, 9): cameras from transforms.json, cameras.json and camera paths, splat .ply files, images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from rl3dedit.errors import InputError
from rl3dedit.scene import load_cameras, load_capture, read_ply
from rl3dedit.scene.cameras_json import read_cameras_json
from rl3dedit.scene.nerfstudio import read_camera_path, read_transforms_json
from rl3dedit.scene.ply import splat_property_names

POSE = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]


def _transforms(folder: Path, frame_edit=None, top_edit=None, frames=None) -> Path:
    """A two-frame transforms.json (images need not exist: w/h are given); `frame_edit` changes frame 1."""
    meta = {"w": 8, "h": 6, "fl_x": 10.0, "fl_y": 10.0, "cx": 4.0, "cy": 3.0,
            "frames": [{"file_path": f"images/f{i}.png", "transform_matrix": [list(r) for r in POSE]} for i in range(2)]}
    meta["frames"][0]["transform_matrix"][0][3] = 1.0  # two camera centres, so the capture has an extent
    if frame_edit:
        meta["frames"][1].update(frame_edit)
    if top_edit:
        meta.update(top_edit)
    if frames is not None:
        meta["frames"] = frames
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder / "transforms.json"


SCALED = [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
SHEARED = [[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
MIRROR = [[-1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
ZERO = [[0.0] * 4 for _ in range(4)]

TRANSFORMS_CASES = {
    "zero focal": ({"fl_x": 0.0}, None, None, r"camera 1 \(f1.png\): focal length fx = 0"),
    "negative focal": ({"fl_y": -5.0}, None, None, r"camera 1 \(f1.png\): .*fy = -5"),
    "scaled rotation": ({"transform_matrix": SCALED}, None, None, r"frame 1 .*not orthonormal"),
    "sheared rotation": ({"transform_matrix": SHEARED}, None, None, r"frame 1 .*not orthonormal"),
    "mirror rotation": ({"transform_matrix": MIRROR}, None, None, r"frame 1 .*determinant -1"),
    "zero (singular) matrix": ({"transform_matrix": ZERO}, None, None, r"frame 1 .*not orthonormal"),
    "null matrix": ({"transform_matrix": None}, None, None, r"frame 1 .*matrix of numbers"),
    "text in matrix": ({"transform_matrix": [["a"] * 4] * 4}, None, None, r"frame 1 .*matrix of numbers"),
    "text focal": ({"fl_x": "wide"}, None, None, r"frame 1 .*must be numbers"),
    "bad last row": ({"transform_matrix": POSE[:3] + [[0.0, 0.0, 1.0, 1.0]]}, None, None, r"frame 1 .*last row"),
    "frames of numbers": (None, None, [1, 2], r"entries must be JSON objects; entry 0 is 1"),
    "frames an object": (None, {"frames": {"a": 1}}, None, r"non-empty 'frames' list"),
    "huge image size": (None, {"w": 10**6}, None, r"larger than 32768 px"),
}


@pytest.mark.parametrize("case", sorted(TRANSFORMS_CASES))
def test_transforms_json_refuses_impossible_cameras(tmp_path, case):
    frame_edit, top_edit, frames, message = TRANSFORMS_CASES[case]
    path = _transforms(tmp_path / "cap", frame_edit, top_edit, frames)
    with pytest.raises(InputError, match=message) as info:
        read_transforms_json(path)
    assert str(path) in str(info.value)


def test_a_valid_transforms_json_still_loads(tmp_path):
    cams = read_transforms_json(_transforms(tmp_path / "cap")).records.cameras
    assert len(cams) == 2 and float(cams.Ks[0, 0, 0]) == 10.0


def _cameras_json(folder: Path, **edit) -> Path:
    entries = [{"id": i, "img_name": f"v{i}", "width": 8, "height": 6, "position": [0.0, 0.0, -3.0],
                "rotation": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "fx": 10.0, "fy": 10.0}
               for i in range(2)]
    entries[1].update(edit)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cameras.json").write_text(json.dumps(entries))
    return folder / "cameras.json"


CAMERAS_JSON_CASES = {
    "zero focal": ({"fx": 0.0}, r"camera 1: focal length fx = 0"),
    "negative focal": ({"fy": -1.0}, r"camera 1: .*fy = -1"),
    "2x2 rotation": ({"rotation": [[1.0, 0.0], [0.0, 1.0]]}, r"camera 1: rotation must be 3x3"),
    "zero rotation": ({"rotation": [[0.0] * 3] * 3}, r"camera 1: rotation .* not orthonormal"),
    "scaled rotation": ({"rotation": [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]}, r"camera 1: .*orthonormal"),
    "text width": ({"width": "wide"}, r"camera 1: .*must be numbers"),
    "text rotation": ({"rotation": "identity"}, r"camera 1: .*must be numbers"),
    "short position": ({"position": [1.0]}, r"camera 1: position must hold 3 numbers"),
}


@pytest.mark.parametrize("case", sorted(CAMERAS_JSON_CASES))
def test_cameras_json_refuses_impossible_cameras(tmp_path, case):
    edit, message = CAMERAS_JSON_CASES[case]
    path = _cameras_json(tmp_path, **edit)
    with pytest.raises(InputError, match=message) as info:
        load_cameras(path)
    assert str(path) in str(info.value)


def test_cameras_json_entries_must_be_objects(tmp_path):
    (tmp_path / "cameras.json").write_text(json.dumps([[1, 2, 3]]))
    with pytest.raises(InputError, match=r"cameras.json: camera 0: expected a JSON object"):
        read_cameras_json(tmp_path / "cameras.json")


def test_camera_path_without_fov_and_corrupt_dataparser_file_name_the_file(tmp_path):
    capture = read_transforms_json(_transforms(tmp_path / "cap"))
    path = tmp_path / "cap" / "path.json"
    entry = {"camera_to_world": sum(POSE, [])}
    path.write_text(json.dumps({"render_width": 8, "render_height": 6, "camera_path": [entry]}))
    with pytest.raises(InputError, match=r"path.json camera_path\[0\]: missing fov"):
        read_camera_path(path, capture)
    path.write_text(json.dumps({"render_width": 8, "render_height": 6, "camera_path": [dict(entry, fov=50.0)]}))
    assert len(read_camera_path(path, capture)) == 1
    (tmp_path / "cap" / "dataparser_transforms.json").write_text("{not json")
    with pytest.raises(InputError, match=r"dataparser_transforms.json: not valid JSON"):
        read_camera_path(path, capture)


def _splat_ply(path: Path, **overrides) -> Path:
    names = splat_property_names(0)
    rows = np.zeros(3, dtype=[(name, "<f4") for name in names])
    rows["rot_0"] = 1.0
    for name, (index, value) in overrides.items():
        rows[name][index] = value
    PlyData([PlyElement.describe(rows, "vertex")]).write(str(path))
    return path


@pytest.mark.parametrize("overrides, message", [
    ({"rot_0": (2, 0.0)}, r"1 Gaussian\(s\) have a zero rotation quaternion .* vertex 2"),
    ({"scale_1": (1, 1e30)}, r"log-scales .* first at vertex 1: \[0, 1e\+30, 0\]"),
    ({"scale_0": (0, -1e30)}, r"log-scales .* first at vertex 0"),
])
def test_ply_with_impossible_splats_is_refused(tmp_path, overrides, message):
    path = _splat_ply(tmp_path / "scene.ply", **overrides)
    with pytest.raises(InputError, match=message) as info:
        read_ply(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("header", [
    b"ply\nformat binary_little_endian 1.0\nelement vertex -5\nproperty float x\nend_header\n",
    b"ply\nformat binary_little_endian 1.0\nelement vertex 99999999999999999999\nproperty float x\nend_header\n",
    b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\nnot-a-number\n",
    b"ply\n\xff\xfe garbage \x00\x01\nend_header\n",
])
def test_ply_with_a_garbage_header_names_the_file(tmp_path, header):
    path = tmp_path / "garbage.ply"
    path.write_bytes(header)
    with pytest.raises(InputError, match=rf"{path}: "):
        read_ply(path)


def test_capture_of_16_bit_images_is_read_at_full_precision(tmp_path):
    from test_views_io import _png16

    folder = tmp_path / "cap"
    _transforms(folder, top_edit={"h": 8, "cy": 4.0})
    (folder / "images").mkdir()
    rng = np.random.default_rng(1)
    expected = [_png16(folder / "images" / f"f{i}.png", rng.integers(0, 65536, (8, 8, 1), dtype=np.uint16))
                for i in range(2)]
    capture = load_capture(folder)
    want = torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2).expand(-1, 3, -1, -1).float()
    torch.testing.assert_close(capture.images, want, atol=1e-6, rtol=0)


def test_lora_that_changes_nothing_or_has_the_wrong_rank_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from rl3dedit.editor import load_pipeline
    from rl3dedit.editor.components import build_tiny_pipeline
    from rl3dedit.editor.config import EditorConfig
    from rl3dedit.editor.lora import LORA_WEIGHT_NAME, add_lora, has_lora, load_lora_weights_checked, save_lora

    pipe = build_tiny_pipeline(0)
    add_lora(pipe.transformer, rank=4, alpha=4, target_modules=["to_q"])
    save_lora(pipe.transformer, tmp_path / "good")
    state = load_file(str(tmp_path / "good" / LORA_WEIGHT_NAME))
    with safe_open(str(tmp_path / "good" / LORA_WEIGHT_NAME), "pt") as handle:
        metadata = handle.metadata()
    (tmp_path / "other_model").mkdir()
    save_file({"unet.down.lora_A.weight": torch.zeros(4, 8), "unet.down.lora_B.weight": torch.zeros(8, 4)},
              str(tmp_path / "other_model" / LORA_WEIGHT_NAME))
    (tmp_path / "rank").mkdir()  # rank-2 tensors under the rank-4 config of the metadata
    save_file({k: (v[:2] if "lora_A" in k else v[:, :2]).contiguous() for k, v in state.items()},
              str(tmp_path / "rank" / LORA_WEIGHT_NAME), metadata=metadata)
    (tmp_path / "nan").mkdir()
    save_file({k: torch.full_like(v, float("nan")) for k, v in state.items()}, str(tmp_path / "nan" / LORA_WEIGHT_NAME),
              metadata=metadata)
    assert has_lora(load_pipeline(EditorConfig(model="tiny", lora=str(tmp_path / "good")), "cpu").transformer)
    fresh = build_tiny_pipeline(0)  # one pipeline for the refusals: none of them attaches an adapter before failing
    for name, message in {"nan": "hold NaN or inf", "other_model": "none of its keys match",
                          "rank": "wrong rank"}.items():
        with pytest.raises(InputError, match=message) as info:
            load_lora_weights_checked(fresh, tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"PK\x03\x04 a torch zip, not safetensors"])
def test_unreadable_transformer_file_names_the_file(tmp_path, content):
    from rl3dedit.editor import load_pipeline
    from rl3dedit.editor.config import EditorConfig

    path = tmp_path / "transformer.safetensors"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"{path}: not a readable safetensors transformer file"):
        load_pipeline(EditorConfig(model="tiny", transformer_file=str(path)), "cpu")


@pytest.mark.parametrize("dotted, value", [("editor.guidance_scale", -1.0), ("rl.guidance_scale", -0.5),
                                           ("views.view_size", 10**6)])
def test_impossible_settings_are_refused(dotted, value):
    from rl3dedit.config import load_config

    with pytest.raises(ValueError, match=dotted.split(".")[1]):
        load_config("tiny").override(dotted, value)


def test_score_json_is_strict_even_when_a_score_is_nan():
    from rl3dedit.files import dumps_json

    text = dumps_json({"total": float("nan"), "terms": {"a": float("inf"), "b": 1.5}})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"total": None, "terms": {"a": None, "b": 1.5}}


@pytest.mark.parametrize("size, downscale, message", [(1, 1, "images are 1x1 px; rl3dedit needs at least 8"),
                                                     (16, 4, "images are 4x4 px after downscale 4"),
                                                     (16, 32, "downscale 32 leaves no pixels")])
def test_too_small_captures_name_the_file(tmp_path, size, downscale, message):
    folder = tmp_path / "cap"
    path = _transforms(folder, top_edit={"w": size, "h": size, "cx": size / 2, "cy": size / 2})
    with pytest.raises(InputError, match=message) as info:
        load_capture(folder, downscale=downscale)
    assert str(path) in str(info.value)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("damage, message", [
    ("truncate trainable.safetensors", "trainable.safetensors: not a readable safetensors"),
    ("nan trainable.safetensors", "trainable.safetensors: 1 tensor\\(s\\) .* hold NaN or inf"),
    ("pickle optimizer.pt", "optimizer.pt: refused to load"),
    ("corrupt state.json", "state.json: not valid JSON"),
    ("empty-object state.json", "state.json: expected a JSON object with integer 'update'"),
])
def test_a_damaged_checkpoint_is_refused_by_file(tmp_path, damage, message):
    import pickle

    from safetensors.torch import save_file

    from rl3dedit.config import load_config
    from rl3dedit.rl.checkpoint import CheckpointState, load_checkpoint, save_checkpoint

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    path = save_checkpoint(tmp_path, state=CheckpointState(1, 4, {}), named_params={"p": param}, optimizer=optimizer,
                           scheduler=scheduler, ema=None, config=load_config("tiny"))
    action, name = damage.split(" ")
    target = path / name
    if action == "truncate":
        target.write_bytes(target.read_bytes()[:10])
    elif action == "nan":
        save_file({"p": torch.tensor([1.0, float("nan"), 0.0])}, str(target))
    elif action == "pickle":
        with open(target, "wb") as f:
            pickle.dump({"state": _Evil()}, f, protocol=2)
    elif action == "corrupt":
        target.write_text("{not json")
    else:
        target.write_text("{}")
    with pytest.raises(InputError, match=message) as info:
        load_checkpoint(path, named_params={"p": param}, optimizer=optimizer, scheduler=scheduler, ema=None)
    assert str(target) in str(info.value)

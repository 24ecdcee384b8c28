"""nerfstudio `transforms.json` and viewer camera paths (https://docs.nerf.studio/quickstart/data_conventions.html).

nerfstudio stores camera-to-world matrices with OpenGL camera axes (x right, y up, z back). Our viewmats are
world-to-camera with OpenCV axes, so each pose becomes ``inv(c2w @ diag(1, -1, -1, 1))`` (negate the camera y and z
columns, then invert). Frame poses in `transforms.json` are already expressed in the world *after*
`applied_transform` (the axis swap `ns-process-data` applied to the COLMAP world), and so is `sparse_pc.ply`; we
keep that world. The transform is still returned so COLMAP points can be brought into it.

Viewer camera paths (`camera_paths/*.json`) live in the *dataparser* frame nerfstudio trains in: poses re-oriented
so the mean camera up is +z, re-centred on the mean camera position and scaled so the largest |coordinate| is 1
(nerfstudio `auto_orient_and_center_poses(method="up", center_method="poses")` with `auto_scale_poses`). A
`dataparser_transforms.json` beside the capture is used when present; otherwise that transform is recomputed from
the frame poses (checked on the `face` and `stone_horse` captures: the mapped paths frame the SfM points).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rl3dedit.errors import InputError
from rl3dedit.files import read_json
from rl3dedit.scene.cameras import CameraRecords, Cameras, check_pose, checked_cameras

logger = logging.getLogger(__name__)

_OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
_PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")


@dataclass
class NerfstudioCapture:
    """What `transforms.json` says about a capture.

    Fields:
        records: cameras (sorted by `file_path`, as nerfstudio does) and their OPENCV distortion.
        c2w_opengl: (V, 4, 4) float64 the raw frame poses, camera-to-world with OpenGL axes (for path fitting).
        applied_transform: (3, 4) float64 map from the COLMAP world to this world, or None.
        ply_file_path: the SfM point cloud named by `ply_file_path`, or None.
        root: the folder holding `transforms.json`.
    """

    root: Path
    records: CameraRecords
    c2w_opengl: torch.Tensor
    applied_transform: torch.Tensor | None
    ply_file_path: Path | None


def opengl_c2w_to_viewmats(c2w: torch.Tensor) -> torch.Tensor:
    """(V, 4, 4) OpenCV world-to-camera viewmats from (V, 4, 4) OpenGL camera-to-world poses (docs/references.md §5)."""
    return torch.linalg.inv(c2w.to(torch.float64) @ _OPENGL_TO_OPENCV.to(c2w.device))


def viewmats_to_opengl_c2w(viewmats: torch.Tensor) -> torch.Tensor:
    """Inverse of `opengl_c2w_to_viewmats`: (V, 4, 4) OpenGL camera-to-world poses."""
    return torch.linalg.inv(viewmats.to(torch.float64)) @ _OPENGL_TO_OPENCV.to(viewmats.device)


def _as_pose(matrix: Any, where: str, *, rigid: bool = False) -> torch.Tensor:
    """A 4x4 float64 matrix from a nested list (16 numbers, 3x4 or 4x4); `rigid` also refuses poses that are not a
    rotation plus a translation (zero, singular, scaled or mirrored rotations)."""
    try:
        pose = torch.tensor(matrix, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"{where}: expected a 4x4 (or 3x4) matrix of numbers, found {str(matrix)[:80]}") from None
    if pose.shape == (16,):
        pose = pose.reshape(4, 4)
    if pose.shape == (3, 4):
        pose = torch.cat([pose, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)])
    if pose.shape != (4, 4):
        raise InputError(f"{where}: expected a 4x4 (or 3x4) matrix, found shape {tuple(pose.shape)}")
    if not torch.isfinite(pose).all():
        raise InputError(f"{where}: matrix contains NaN or inf")
    if rigid:
        check_pose(pose, where)
    return pose


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as exc:  # includes a missing file and Pillow's UnidentifiedImageError
        raise InputError(f"{path}: cannot read the image size ('w'/'h' are not given): {exc}") from exc


def _resolve_image(root: Path, file_path: str) -> Path:
    path = root / file_path
    if not path.suffix and not path.exists():
        for suffix in (".png", ".jpg", ".jpeg"):  # Blender-synthetic files omit the extension
            if path.with_suffix(suffix).exists():
                return path.with_suffix(suffix)
    return path


def _frame_intrinsics(meta: dict, frame: dict, image_path: Path, where: str) -> tuple[list[float], list[float], int, int]:
    """K entries (fx, fy, cx, cy), distortion (k1, k2, p1, p2) and size; per-frame keys override shared ones."""

    def get(key: str, default: Any = None) -> Any:
        return frame.get(key, meta.get(key, default))

    model = get("camera_model", "OPENCV")
    if model not in _PINHOLE_MODELS:
        raise ValueError(
            f"{where}: camera_model {model!r} is not supported (supported: {', '.join(_PINHOLE_MODELS)}); "
            "undistort the capture to a pinhole model first"
        )
    for extra in ("k3", "k4"):
        if float(get(extra, 0.0)) != 0.0:
            raise ValueError(f"{where}: distortion coefficient {extra} = {get(extra)} is not supported (only k1 k2 p1 p2)")
    width, height = get("w"), get("h")
    if width is None or height is None:
        width, height = _image_size(image_path)
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None and get("camera_angle_x") is not None:
        fx = 0.5 * float(width) / math.tan(0.5 * float(get("camera_angle_x")))
    if fx is None:
        raise ValueError(f"{where}: no focal length (expected 'fl_x' or 'camera_angle_x')")
    fy = fx if fy is None else fy
    cx, cy = get("cx", float(width) / 2), get("cy", float(height) / 2)
    coeffs = [float(get(k, 0.0)) for k in ("k1", "k2", "p1", "p2")]
    return [float(fx), float(fy), float(cx), float(cy)], coeffs, int(width), int(height)


def read_transforms_json(path: str | Path) -> NerfstudioCapture:
    """Read a nerfstudio `transforms.json` (file or folder holding one) into OpenCV pinhole cameras + distortion.

    Frames are sorted by `file_path`. Per-frame intrinsics override the shared top-level ones; all frames must share
    one image size. Unsupported camera models (fisheye, equirectangular) and k3/k4 distortion raise a clear error.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    meta = read_json(path, "nerfstudio transforms.json")
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames or not isinstance(frames, list):
        raise InputError(f"{path}: expected a JSON object with a non-empty 'frames' list")
    not_objects = [i for i, frame in enumerate(frames) if not isinstance(frame, dict)]
    if not_objects:
        raise InputError(f"{path}: 'frames' entries must be JSON objects; entry {not_objects[0]} is "
                         f"{json.dumps(frames[not_objects[0]])[:60]}")
    frames = sorted(frames, key=lambda f: str(f.get("file_path", "")))
    root = path.parent
    poses, ks, coeffs, sizes, image_paths = [], [], [], set(), []
    for i, frame in enumerate(frames):
        where = f"{path} frame {i} ({frame.get('file_path', '?')})"
        if "file_path" not in frame or "transform_matrix" not in frame:
            raise ValueError(f"{where}: each frame needs 'file_path' and 'transform_matrix'")
        image_path = _resolve_image(root, str(frame["file_path"]))
        poses.append(_as_pose(frame["transform_matrix"], where, rigid=True))
        try:
            k, c, width, height = _frame_intrinsics(meta, frame, image_path, where)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{where}: intrinsics (fl_x, fl_y, cx, cy, w, h, k1..p2) must be numbers: {exc}") from exc
        ks.append(k)
        coeffs.append(c)
        sizes.add((width, height))
        image_paths.append(image_path)
    if len(sizes) != 1:
        raise ValueError(f"{path}: frames have different image sizes {sorted(sizes)}; rl3dedit needs one size per capture")
    width, height = sizes.pop()
    k = torch.tensor(ks, dtype=torch.float64)
    Ks = torch.zeros(len(frames), 3, 3, dtype=torch.float64)
    Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2], Ks[:, 2, 2] = k[:, 0], k[:, 1], k[:, 2], k[:, 3], 1.0
    c2w = torch.stack(poses)
    distortion = torch.tensor(coeffs, dtype=torch.float32)
    cameras = checked_cameras(opengl_c2w_to_viewmats(c2w).float(), Ks.float(), width, height, image_paths, path)
    applied = meta.get("applied_transform")
    applied_transform = _as_pose(applied, f"{path} applied_transform")[:3] if applied is not None else None
    ply = meta.get("ply_file_path")
    return NerfstudioCapture(
        root=root,
        records=CameraRecords(cameras, distortion if bool((distortion != 0).any()) else None),
        c2w_opengl=c2w,
        applied_transform=applied_transform,
        ply_file_path=root / ply if ply else None,
    )


def _rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(3, 3) the smallest rotation taking unit direction a to unit direction b (Rodrigues' formula)."""
    a, b = a / a.norm(), b / b.norm()
    axis = torch.linalg.cross(a, b)
    sin, cos = axis.norm(), torch.dot(a, b)
    if sin < 1e-9:
        if cos > 0:
            return torch.eye(3, dtype=a.dtype)
        # Opposite directions: a half turn about any axis perpendicular to a (sin = 0, 1 - cos = 2).
        helper = torch.tensor([1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0], dtype=a.dtype)
        skew = _skew(torch.nn.functional.normalize(torch.linalg.cross(a, helper), dim=0))
        return torch.eye(3, dtype=a.dtype) + 2 * skew @ skew
    axis = axis / sin
    skew = _skew(axis)
    return torch.eye(3, dtype=a.dtype) + sin * skew + (1 - cos) * skew @ skew


def _skew(v: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros((), dtype=v.dtype)
    return torch.stack(
        [torch.stack([zero, -v[2], v[1]]), torch.stack([v[2], zero, -v[0]]), torch.stack([-v[1], v[0], zero])]
    )


def dataparser_transform(c2w_opengl: torch.Tensor) -> tuple[torch.Tensor, float]:
    """nerfstudio's default dataparser normalisation of a capture, recomputed from its poses.

    Returns (transform (3, 4), scale) with x_dataparser = scale * (transform @ [x_world; 1]): rotate the mean camera
    up axis (OpenGL +y column) onto +z about the mean camera position, then scale so max |coordinate| of the
    re-oriented camera positions is 1 (nerfstudio `camera_utils.auto_orient_and_center_poses`, method "up", centre
    "poses", and `NerfstudioDataParserConfig.auto_scale_poses`).
    """
    c2w = c2w_opengl.to(torch.float64)
    origins = c2w[:, :3, 3]
    mean = origins.mean(dim=0)
    rotation = _rotation_between(c2w[:, :3, 1].mean(dim=0), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    transform = torch.cat([rotation, (rotation @ -mean)[:, None]], dim=1)
    oriented = (origins - mean) @ rotation.T
    extent = float(oriented.abs().max())
    if extent == 0.0:
        raise InputError("all cameras of the capture sit at one position; its scale for the camera path is undefined")
    return transform, 1.0 / extent


def _read_dataparser_file(path: Path) -> tuple[torch.Tensor, float]:
    meta = read_json(path, "nerfstudio dataparser_transforms.json")
    if not isinstance(meta, dict) or "transform" not in meta or "scale" not in meta:
        raise InputError(f"{path}: expected a JSON object with keys 'transform' (3x4) and 'scale'")
    try:
        scale = float(meta["scale"])
    except (TypeError, ValueError):
        raise InputError(f"{path}: 'scale' must be a number, found {meta['scale']!r}") from None
    if not math.isfinite(scale) or scale <= 0:
        raise InputError(f"{path}: 'scale' must be a positive number, found {scale}")
    return _as_pose(meta["transform"], f"{path} transform", rigid=True)[:3], scale


def read_camera_path(path: str | Path, capture: NerfstudioCapture) -> Cameras:
    """A nerfstudio viewer camera path (`camera_paths/*.json`) as our cameras, in the capture's world.

    Each `camera_path` entry holds a flat row-major OpenGL `camera_to_world` in the dataparser frame and a vertical
    `fov` in degrees (fx = fy = (H / 2) / tan(fov / 2), principal point at the centre), rendered at
    `render_width` x `render_height`. Poses are mapped back with the inverse dataparser transform: from
    `dataparser_transforms.json` next to `transforms.json` when it exists, otherwise recomputed (`dataparser_transform`).
    """
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    entries = meta.get("camera_path") if isinstance(meta, dict) else None
    if not entries:
        raise ValueError(f"{path}: expected a nerfstudio camera path with a non-empty 'camera_path' list")
    camera_type = meta.get("camera_type", "perspective")
    if camera_type != "perspective":
        raise ValueError(f"{path}: camera_type {camera_type!r} is not supported (only 'perspective')")
    width, height = int(meta.get("render_width", 0)), int(meta.get("render_height", 0))
    if width <= 0 or height <= 0:
        raise ValueError(f"{path}: render_width/render_height missing or not positive")
    dataparser_file = capture.root / "dataparser_transforms.json"
    if dataparser_file.is_file():
        transform, scale = _read_dataparser_file(dataparser_file)
    else:
        try:
            transform, scale = dataparser_transform(capture.c2w_opengl)
        except InputError as exc:
            raise InputError(f"{capture.root / 'transforms.json'}: {exc}") from None
    rotation, translation = transform[:, :3], transform[:, 3]
    for i, entry in enumerate(entries):
        missing = [key for key in ("camera_to_world", "fov") if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise InputError(f"{path} camera_path[{i}]: missing {', '.join(missing)} (each entry needs "
                             "'camera_to_world' and 'fov' in degrees)")
        fov = entry["fov"]
        if not isinstance(fov, (int, float)) or not 0 < fov < 180:
            raise InputError(f"{path} camera_path[{i}]: fov must be a number of degrees in (0, 180), found {fov!r}")
    poses = torch.stack([_as_pose(e["camera_to_world"], f"{path} camera_path[{i}]", rigid=True)
                         for i, e in enumerate(entries)])
    world = poses.clone()
    world[:, :3, :3] = rotation.T @ poses[:, :3, :3]
    world[:, :3, 3] = (poses[:, :3, 3] / scale - translation) @ rotation
    focal = torch.tensor([0.5 * height / math.tan(math.radians(float(e["fov"])) / 2) for e in entries], dtype=torch.float32)
    Ks = torch.zeros(len(entries), 3, 3)
    Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2], Ks[:, 2, 2] = focal, focal, width / 2, height / 2, 1.0
    return checked_cameras(opengl_c2w_to_viewmats(world).float(), Ks, width, height, None, path)

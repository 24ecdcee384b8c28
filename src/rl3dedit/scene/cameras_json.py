"""INRIA 3DGS `cameras.json` read and write (INRIA 3DGS, docs/references.md §5).

The file is a JSON list with one object per camera: `id`, `img_name`, `width`, `height`, `position` (camera centre
in world coordinates), `rotation` (3x3 camera-to-world rotation, OpenCV axes, nested rows), `fx`, `fy`. INRIA puts
the principal point at the image centre; when ours is elsewhere we also write `cx`, `cy` (extra keys that INRIA
readers and viewers ignore, and that `read_cameras_json` reads back), so the round trip is lossless.

This is rl3dedit's one camera file: fits, renders, prepared view sets (`id` = the camera's index in its capture)
and evaluation cameras are all written with `write_cameras_json` and read with `read_cameras_json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rl3dedit.errors import InputError
from rl3dedit.files import atomic_path, dumps_json, read_json
from rl3dedit.scene.cameras import Cameras, check_pose, checked_cameras

_REQUIRED_KEYS = ("width", "height", "position", "rotation", "fx", "fy")


def read_cameras_json(path: str | Path, images_dir: str | Path | None = None) -> Cameras:
    """Read INRIA `cameras.json` into cameras (image paths `images_dir/img_name.*` when `images_dir` is given)."""
    path = Path(path)
    entries = read_json(path, "INRIA cameras.json")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: expected a non-empty JSON list of cameras (INRIA cameras.json)")
    viewmats, Ks, sizes, names = [], [], set(), []
    for i, entry in enumerate(entries):
        where = f"{path}: camera {i}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a JSON object, found {json.dumps(entry)[:60]}")
        missing = [k for k in _REQUIRED_KEYS if k not in entry]
        if missing:
            raise InputError(f"{path}: camera {i} is missing keys: {', '.join(missing)}")
        try:
            rotation = torch.tensor(entry["rotation"], dtype=torch.float64)
            position = torch.tensor(entry["position"], dtype=torch.float64)
            width, height = int(entry["width"]), int(entry["height"])
            fx, fy = float(entry["fx"]), float(entry["fy"])
            cx, cy = float(entry.get("cx", width / 2)), float(entry.get("cy", height / 2))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"{where}: rotation, position, width, height, fx, fy (cx, cy) must be numbers: {exc}"
                             ) from None
        if tuple(position.shape) != (3,):
            raise InputError(f"{where}: position must hold 3 numbers, found shape {tuple(position.shape)}")
        if tuple(rotation.shape) != (3, 3):
            raise InputError(f"{where}: rotation must be 3x3, found shape {tuple(rotation.shape)}")
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, :3], c2w[:3, 3] = rotation, position
        check_pose(c2w, where)  # before inverting: a zero or scaled rotation is refused, not inverted
        Ks.append(torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64))
        viewmats.append(torch.linalg.inv(c2w))
        sizes.add((width, height))
        names.append(str(entry.get("img_name", f"{i:05d}")))
    if len(sizes) != 1:
        raise ValueError(f"{path}: cameras have different image sizes {sorted(sizes)}; rl3dedit needs one size")
    width, height = sizes.pop()
    image_paths = None
    if images_dir is not None:
        image_paths = [_find_image(Path(images_dir), name) for name in names]
    return checked_cameras(torch.stack(viewmats).float(), torch.stack(Ks).float(), width, height, image_paths, path)


def _find_image(folder: Path, name: str) -> Path:
    for suffix in ("", ".png", ".jpg", ".jpeg", ".JPG", ".PNG"):
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return folder / name


def write_cameras_json(cameras: Cameras, path: str | Path, ids: list[int] | None = None) -> Path:
    """Write cameras as INRIA `cameras.json`, atomically (img_name from image paths, else the index).

    `ids`: the `id` of each camera (e.g. its index in the capture it was chosen from); default 0..V-1.
    """
    if ids is not None and len(ids) != len(cameras):
        raise ValueError(f"write_cameras_json: {len(ids)} ids for {len(cameras)} cameras")
    path = Path(path)
    c2w = torch.linalg.inv(cameras.viewmats.detach().to("cpu", torch.float64))
    Ks = cameras.Ks.detach().to("cpu", torch.float64)
    entries = []
    for i in range(len(cameras)):
        entry = {
            "id": int(ids[i]) if ids is not None else i,
            "img_name": cameras.image_paths[i].stem if cameras.image_paths is not None else f"{i:05d}",
            "width": cameras.width,
            "height": cameras.height,
            "position": c2w[i, :3, 3].tolist(),
            "rotation": c2w[i, :3, :3].tolist(),
            "fy": float(Ks[i, 1, 1]),
            "fx": float(Ks[i, 0, 0]),
        }
        cx, cy = float(Ks[i, 0, 2]), float(Ks[i, 1, 2])
        if abs(cx - cameras.width / 2) > 1e-6 or abs(cy - cameras.height / 2) > 1e-6:
            entry["cx"], entry["cy"] = cx, cy
        entries.append(entry)
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(entries, indent=2))
    return path

"""INRIA 3DGS `cameras.json` read and write (reference: gaussian_splatting.md section 7).

The file is a JSON list with one object per camera: `id`, `img_name`, `width`, `height`, `position` (camera centre
in world coordinates), `rotation` (3x3 camera-to-world rotation, OpenCV axes, nested rows), `fx`, `fy`. INRIA puts
the principal point at the image centre; when ours is elsewhere we also write `cx`, `cy` (extra keys that INRIA
readers and viewers ignore, and that `read_cameras_json` reads back), so the round trip is lossless.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rl3dedit.files import atomic_path
from rl3dedit.scene.cameras import Cameras, checked_cameras

_REQUIRED_KEYS = ("width", "height", "position", "rotation", "fx", "fy")


def read_cameras_json(path: str | Path, images_dir: str | Path | None = None) -> Cameras:
    """Read INRIA `cameras.json` into cameras (image paths `images_dir/img_name.*` when `images_dir` is given)."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON list of cameras (INRIA cameras.json)")
    viewmats, Ks, sizes, names = [], [], set(), []
    for i, entry in enumerate(entries):
        missing = [k for k in _REQUIRED_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{path}: camera {i} is missing keys: {', '.join(missing)}")
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, :3] = torch.tensor(entry["rotation"], dtype=torch.float64)
        c2w[:3, 3] = torch.tensor(entry["position"], dtype=torch.float64)
        width, height = int(entry["width"]), int(entry["height"])
        cx, cy = float(entry.get("cx", width / 2)), float(entry.get("cy", height / 2))
        Ks.append(torch.tensor([[entry["fx"], 0.0, cx], [0.0, entry["fy"], cy], [0.0, 0.0, 1.0]], dtype=torch.float64))
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


def write_cameras_json(cameras: Cameras, path: str | Path) -> Path:
    """Write cameras as INRIA `cameras.json`, atomically (img_name from image paths, else the index)."""
    path = Path(path)
    c2w = torch.linalg.inv(cameras.viewmats.detach().to("cpu", torch.float64))
    Ks = cameras.Ks.detach().to("cpu", torch.float64)
    entries = []
    for i in range(len(cameras)):
        entry = {
            "id": i,
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
        tmp.write_text(json.dumps(entries, indent=2))
    return path

"""COLMAP sparse models (text or binary) through pycolmap (format: https://colmap.github.io/format.html).

COLMAP poses already are world-to-camera with OpenCV axes (X_cam = R X_world + t) and pixel centres at +0.5, so they
are our viewmats as they stand. Images are ordered by name (COLMAP ids are not contiguous and carry no order).
Supported camera models: SIMPLE_PINHOLE, PINHOLE, and the radial-tangential family SIMPLE_RADIAL, RADIAL, OPENCV,
whose coefficients become OpenCV (k1, k2, p1, p2); other models raise an error naming the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rl3dedit.scene.cameras import CameraRecords, checked_cameras
from rl3dedit.scene.ply import PointCloud

logger = logging.getLogger(__name__)

_MODEL_FILES = ("cameras.bin", "cameras.txt")


@dataclass
class ColmapModel:
    """A COLMAP reconstruction in our conventions.

    Fields:
        records: cameras sorted by image name, image paths under `images_dir`, and their distortion.
        points: the triangulated `points3D` with colours in [0, 1] (None when the model has no points).
    """

    records: CameraRecords
    points: PointCloud | None


def find_colmap_model(path: Path) -> Path | None:
    """The folder holding `cameras.{bin,txt}`: `path` itself, `path/sparse/0`, `path/sparse` or `path/colmap/sparse/0`."""
    for candidate in (path, path / "sparse" / "0", path / "sparse", path / "colmap" / "sparse" / "0"):
        if any((candidate / name).is_file() for name in _MODEL_FILES):
            return candidate
    return None


def _import_pycolmap():
    try:
        import pycolmap
    except ImportError as exc:  # pragma: no cover - pycolmap is a core dependency
        raise ImportError("reading COLMAP models needs pycolmap: pip install pycolmap") from exc
    return pycolmap


def _intrinsics(model: str, params: list[float], where: str) -> tuple[list[float], list[float]]:
    """(fx, fy, cx, cy) and OpenCV (k1, k2, p1, p2) from COLMAP camera parameters (COLMAP `models.h`)."""
    if model == "SIMPLE_PINHOLE":
        f, cx, cy = params
        return [f, f, cx, cy], [0.0, 0.0, 0.0, 0.0]
    if model == "PINHOLE":
        return list(params), [0.0, 0.0, 0.0, 0.0]
    if model == "SIMPLE_RADIAL":
        f, cx, cy, k = params
        return [f, f, cx, cy], [k, 0.0, 0.0, 0.0]
    if model == "RADIAL":
        f, cx, cy, k1, k2 = params
        return [f, f, cx, cy], [k1, k2, 0.0, 0.0]
    if model == "OPENCV":
        return list(params[:4]), list(params[4:])
    raise ValueError(
        f"{where}: COLMAP camera model {model} is not supported (supported: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, "
        "RADIAL, OPENCV); run `colmap image_undistorter` to get a PINHOLE model"
    )


def read_colmap(path: str | Path, images_dir: str | Path | None = None) -> ColmapModel:
    """Read a COLMAP sparse model (binary or text; `path` may be the capture folder or the model folder).

    Args:
        path: model folder (`cameras.bin`/`.txt`, `images.*`, `points3D.*`) or a capture folder with `sparse/0`.
        images_dir: folder the image names are relative to; default `<capture>/images` when `path` is a capture.
    """
    path = Path(path)
    model_dir = find_colmap_model(path)
    if model_dir is None:
        raise FileNotFoundError(f"{path}: no COLMAP model (expected cameras.bin or cameras.txt here or in sparse/0)")
    pycolmap = _import_pycolmap()
    try:
        recon = pycolmap.Reconstruction(str(model_dir))
    except Exception as exc:  # pycolmap raises plain RuntimeError/ValueError with the parser's message
        raise ValueError(f"{model_dir}: could not read the COLMAP model: {exc}") from exc
    images = sorted(recon.images.values(), key=lambda image: image.name)
    if not images:
        raise ValueError(f"{model_dir}: the COLMAP model has no images")
    if images_dir is None:
        images_dir = model_dir.parent.parent / "images" if model_dir.parent.name == "sparse" else model_dir.parent / "images"
    images_dir = Path(images_dir)

    viewmats, ks, coeffs, sizes = [], [], [], set()
    for image in images:
        where = f"{model_dir} image {image.name!r}"
        camera = recon.cameras[image.camera_id]
        k, c = _intrinsics(camera.model.name, [float(p) for p in camera.params], where)
        ks.append(k)
        coeffs.append(c)
        sizes.add((int(camera.width), int(camera.height)))
        pose = image.cam_from_world()
        pose = pose() if callable(pose) else pose
        viewmat = torch.eye(4, dtype=torch.float64)
        viewmat[:3] = torch.from_numpy(pose.matrix())
        viewmats.append(viewmat)
    if len(sizes) != 1:
        raise ValueError(f"{model_dir}: cameras have different image sizes {sorted(sizes)}; rl3dedit needs one size")
    width, height = sizes.pop()
    k = torch.tensor(ks, dtype=torch.float32)
    Ks = torch.zeros(len(images), 3, 3)
    Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2], Ks[:, 2, 2] = k[:, 0], k[:, 1], k[:, 2], k[:, 3], 1.0
    paths = [images_dir / image.name for image in images]
    cameras = checked_cameras(torch.stack(viewmats).float(), Ks, width, height, paths, model_dir)
    distortion = torch.tensor(coeffs, dtype=torch.float32)
    return ColmapModel(
        records=CameraRecords(cameras, distortion if bool((distortion != 0).any()) else None),
        points=_points(recon),
    )


def _points(recon) -> PointCloud | None:
    points = list(recon.points3D.values())
    if not points:
        return None
    xyz = torch.from_numpy(np.array([p.xyz for p in points], dtype=np.float32))
    rgb = torch.from_numpy(np.array([p.color for p in points], dtype=np.float32)) / 255.0
    return PointCloud(xyz, rgb)

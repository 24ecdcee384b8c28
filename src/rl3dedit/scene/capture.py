"""Captures: posed photographs (+ SfM points, + render path) loaded from nerfstudio or COLMAP folders.

`load_capture` reads everything eagerly: images are decoded, undistorted (when the camera model has distortion) and
downscaled at load time, so a `Capture` always holds pinhole images matching its `cameras`. A 65-frame 512-px
capture is about 200 MB as float32; pass `downscale` for CPU work. `load_cameras` reads cameras only, from any
supported format.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from rl3dedit.errors import InputError
from rl3dedit.files import read_image
from rl3dedit.scene.cameras import CameraRecords, Cameras
from rl3dedit.scene.cameras_json import read_cameras_json
from rl3dedit.scene.colmap import find_colmap_model, read_colmap
from rl3dedit.scene.distortion import undistort_images
from rl3dedit.scene.nerfstudio import NerfstudioCapture, read_camera_path, read_transforms_json
from rl3dedit.scene.ply import PointCloud, read_points_ply

logger = logging.getLogger(__name__)


@dataclass
class Capture:
    """Posed pinhole images of one scene.

    Fields:
        cameras: V cameras (OpenCV w2c viewmats, pixel Ks) matching `images`.
        images: (V, 3, H, W) float32 in [0, 1], undistorted, H/W = cameras.height/width.
        points: (P, 3) SfM points in the cameras' world, or None.
        point_colors: (P, 3) float32 RGB in [0, 1] of `points`, or None.
        render_path: a smooth camera path for turntable renders (nerfstudio `camera_paths`), or None.
        name: a short name (the folder name for loaded captures).
    """

    cameras: Cameras
    images: torch.Tensor
    points: torch.Tensor | None = None
    point_colors: torch.Tensor | None = None
    render_path: Cameras | None = None
    name: str = "capture"

    def __post_init__(self) -> None:
        expected = (len(self.cameras), 3, self.cameras.height, self.cameras.width)
        if tuple(self.images.shape) != expected:
            raise ValueError(f"Capture {self.name}: images have shape {tuple(self.images.shape)}, expected {expected}")
        if not torch.isfinite(self.images).all():
            raise ValueError(f"Capture {self.name}: images contain NaN or inf")
        if (self.points is None) != (self.point_colors is None):
            raise ValueError(f"Capture {self.name}: give both points and point_colors, or neither")
        if self.points is not None and self.point_colors is not None:
            if self.points.ndim != 2 or self.points.shape[1] != 3 or self.point_colors.shape != self.points.shape:
                raise ValueError(
                    f"Capture {self.name}: points {tuple(self.points.shape)} and point_colors "
                    f"{tuple(self.point_colors.shape)} must both be (P, 3)"
                )
            if not torch.isfinite(self.points).all():
                raise ValueError(f"Capture {self.name}: points contain NaN or inf")

    def __len__(self) -> int:
        return len(self.cameras)


def _load_images(records: CameraRecords, source: Path, factor: int) -> torch.Tensor:
    """Decode, undistort and box-downscale the images one at a time (no full-resolution stack in memory)."""
    cameras = records.cameras
    if cameras.image_paths is None:
        raise ValueError(f"{source}: the cameras name no image files")
    missing = [str(p) for p in cameras.image_paths if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        raise FileNotFoundError(f"{source}: {len(missing)} of {len(cameras)} image files are missing: {shown}")
    if records.is_distorted:
        logger.info("undistorting %d images of %s (OpenCV k1 k2 p1 p2)", len(cameras), source)
    out = torch.empty(len(cameras), 3, cameras.height // factor, cameras.width // factor)
    for i, path in enumerate(cameras.image_paths):
        image = torch.from_numpy(read_image(path)).permute(2, 0, 1)
        if image.shape[1:] != (cameras.height, cameras.width):
            raise ValueError(
                f"{path}: image is {image.shape[2]}x{image.shape[1]} but {source} says {cameras.width}x{cameras.height}"
            )
        if records.is_distorted and records.distortion is not None:
            image = undistort_images(image[None], cameras.Ks[i : i + 1], records.distortion[i : i + 1])[0]
        out[i] = _box_downscale(image[None], factor)[0]
    return out


def _box_downscale(images: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = images.shape[2] // factor, images.shape[3] // factor
    return F.avg_pool2d(images[:, :, : h * factor, : w * factor], factor) if factor > 1 else images


def downscale_capture_images(images: torch.Tensor, cameras: Cameras, factor: int) -> tuple[torch.Tensor, Cameras]:
    """Box-filter (V, 3, H, W) images by an integer factor and scale intrinsics to match.

    Rows/columns beyond a multiple of `factor` are cropped from the bottom/right (which leaves intrinsics valid);
    with pixel centres at +0.5, continuous pixel coordinates scale exactly by 1/factor, so fx, fy, cx, cy do too.
    """
    cameras = _downscaled_cameras(cameras, factor)
    return _box_downscale(images, factor), cameras


def _downscaled_cameras(cameras: Cameras, factor: int) -> Cameras:
    """The cameras of images box-downscaled by `factor` (validated: a positive integer leaving some pixels)."""
    if factor < 1:
        raise ValueError(f"downscale must be a positive integer, got {factor}")
    if cameras.width // factor == 0 or cameras.height // factor == 0:
        raise ValueError(f"downscale {factor} leaves no pixels of a {cameras.width}x{cameras.height} capture")
    Ks = cameras.Ks.clone()
    Ks[:, :2, :] /= factor
    return Cameras(cameras.viewmats, Ks, cameras.width // factor, cameras.height // factor, cameras.image_paths)


MIN_IMAGE_SIDE = 8
"""Smallest image side (after downscale) a capture may have: fewer pixels cannot be fitted or scored (SSIM's
window, VGGT's patches), and such files are usually thumbnails or mistakes."""


def _resolve_records(records: CameraRecords, source: Path, downscale: int) -> tuple[Cameras, torch.Tensor]:
    try:
        cameras = _downscaled_cameras(records.cameras, downscale)  # validates `downscale` before any decoding
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    if min(cameras.width, cameras.height) < MIN_IMAGE_SIDE:
        raise InputError(f"{source}: images are {cameras.width}x{cameras.height} px"
                         + (f" after downscale {downscale}" if downscale > 1 else "")
                         + f"; rl3dedit needs at least {MIN_IMAGE_SIDE} px per side")
    return cameras, _load_images(records, source, downscale)


def _nerfstudio_points(ns: NerfstudioCapture) -> PointCloud | None:
    if ns.ply_file_path is not None and ns.ply_file_path.is_file():
        return read_points_ply(ns.ply_file_path)
    colmap_dir = find_colmap_model(ns.root / "colmap")
    if colmap_dir is None:
        return None
    points = read_colmap(colmap_dir).points
    if points is None or ns.applied_transform is None:
        return points
    # COLMAP points live in the COLMAP world; the frames live in the world after `applied_transform`.
    rotation, translation = ns.applied_transform[:, :3].float(), ns.applied_transform[:, 3].float()
    return PointCloud(points.points @ rotation.T + translation, points.colors)


def _nerfstudio_render_path(ns: NerfstudioCapture, downscale: int) -> Cameras | None:
    paths = sorted((ns.root / "camera_paths").glob("*.json"))
    if not paths:
        return None
    if len(paths) > 1:
        logger.info("%s has %d camera paths; using %s", ns.root, len(paths), paths[0].name)
    render_path = read_camera_path(paths[0], ns)
    if downscale > 1:
        render_path = render_path.rescaled(max(1, render_path.width // downscale), max(1, render_path.height // downscale))
    return render_path


def load_capture(path: str | Path, downscale: int = 1) -> Capture:
    """Load a capture folder: nerfstudio (`transforms.json`) or COLMAP (`sparse/0` + `images/`).

    Args:
        path: the capture folder (or its `transforms.json`).
        downscale: integer factor; images are box-filtered and intrinsics scaled (see `downscale_capture_images`).
    Returns:
        A `Capture` with undistorted images, SfM points (nerfstudio `ply_file_path`, or COLMAP `points3D`) and, for
        nerfstudio folders, the first `camera_paths/*.json` as `render_path` (at the capture's downscale).
    """
    path = Path(path)
    root = path.parent if path.is_file() else path
    if not root.is_dir():
        raise FileNotFoundError(f"{path}: no such capture folder")
    if path.is_file() or (root / "transforms.json").is_file():
        ns = read_transforms_json(path)
        cameras, images = _resolve_records(ns.records, ns.root / "transforms.json", downscale)
        cloud = _nerfstudio_points(ns)
        render_path = _nerfstudio_render_path(ns, downscale)
    elif find_colmap_model(root) is not None:
        model = read_colmap(root)
        cameras, images = _resolve_records(model.records, find_colmap_model(root) or root, downscale)
        cloud, render_path = model.points, None
    else:
        raise FileNotFoundError(
            f"{path}: not a capture folder (expected transforms.json, or a COLMAP model in sparse/0 with images/)"
        )
    return Capture(
        cameras=cameras,
        images=images,
        points=cloud.points if cloud is not None else None,
        point_colors=cloud.colors if cloud is not None else None,
        render_path=render_path,
        name=root.name,
    )


def load_cameras(path: str | Path) -> Cameras:
    """Cameras from any supported file or folder, dispatched on its format.

    Accepts INRIA `cameras.json`, nerfstudio `transforms.json`, a COLMAP model folder (or a capture folder holding
    one, or `cameras.bin`/`cameras.txt` itself). Cameras with lens distortion are returned as the pinhole cameras of
    the *undistorted* images (a warning says so); use `load_capture` to get those images, or `load_camera_records`
    + `undistort_views` to pair image files with the cameras.
    """
    path = Path(path)
    return _warn_distortion(load_camera_records(path), path)


def undistort_views(views: torch.Tensor, records: CameraRecords, source: object) -> tuple[torch.Tensor, Cameras]:
    """Image files paired with a camera file: (V, 3, H, W) views as the pinhole images the cameras describe.

    The cameras are rescaled to the views' size (the views may be a downscaled copy of the captured frames; OpenCV
    distortion acts on normalised coordinates, so its coefficients do not change) and, when the file has lens
    distortion, the views are undistorted with that model, as `load_capture` does. Views whose aspect ratio differs
    from the cameras' are refused, naming `source`: they cannot be the frames the cameras saw.
    """
    cameras = records.cameras
    if views.ndim != 4 or len(views) != len(cameras):
        raise ValueError(f"{source}: {len(cameras)} cameras for views of shape {tuple(views.shape)}")
    h, w = views.shape[-2:]
    if abs(w / h - cameras.width / cameras.height) > 0.01 * cameras.width / cameras.height:
        raise ValueError(f"{source}: the views are {w}x{h} but the cameras are {cameras.width}x{cameras.height}; "
                         "pass the frames the cameras were calibrated for (same aspect ratio)")
    cameras = cameras.rescaled(w, h)
    if records.is_distorted and records.distortion is not None:
        logger.info("%s: undistorting %d views with the cameras' OpenCV model (k1 k2 p1 p2)", source, len(views))
        views = undistort_images(views, cameras.Ks.to(views), records.distortion.to(views)).clamp(0, 1)
    return views, cameras


def load_camera_records(path: str | Path) -> CameraRecords:
    """`load_cameras`'s cameras together with the file's lens distortion (None for INRIA `cameras.json`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such camera file or folder")
    if path.is_dir():
        if (path / "transforms.json").is_file():
            return read_transforms_json(path).records
        if find_colmap_model(path) is not None:
            return read_colmap(path).records
        if (path / "cameras.json").is_file():
            return CameraRecords(read_cameras_json(path / "cameras.json"))
        raise ValueError(f"{path}: no transforms.json, COLMAP model or cameras.json in this folder")
    if path.name in ("cameras.bin", "cameras.txt"):
        return read_colmap(path.parent).records
    if path.suffix.lower() != ".json":
        raise ValueError(
            f"{path}: unknown camera format (expected cameras.json, transforms.json, or a COLMAP model folder)"
        )
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if isinstance(content, list):
        return CameraRecords(read_cameras_json(path))
    if isinstance(content, dict) and "frames" in content:
        return read_transforms_json(path).records
    if isinstance(content, dict) and "camera_path" in content:
        raise ValueError(f"{path}: a nerfstudio camera path needs its capture's frame; render it with "
                         "`rl3dedit render --camera-path PATH --data CAPTURE` (in Python: load_capture(CAPTURE)"
                         ".render_path)")
    raise ValueError(f"{path}: JSON is neither INRIA cameras.json (a list) nor nerfstudio transforms.json ('frames')")


def _warn_distortion(records: CameraRecords, source: Path) -> Cameras:
    if records.is_distorted:
        logger.warning(
            "%s: cameras have lens distortion; returning the pinhole cameras of the undistorted images "
            "(the image files on disk are distorted; load_capture undistorts them)",
            source,
        )
    return records.cameras

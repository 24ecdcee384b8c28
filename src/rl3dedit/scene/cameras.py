"""Pinhole cameras in the one convention rl3dedit uses everywhere.

- `viewmats` are **world-to-camera** 4x4 matrices with OpenCV camera axes (x right, y down, z forward);
  this is gsplat's `viewmats` and VGGT's `extrinsic` (as 3x4) convention.
- `Ks` are pixel intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] for images of `width` x `height`,
  with pixel centres at integer + 0.5 coordinates (the pixel (0, 0) covers [0, 1) x [0, 1)).
- `c2w` names appear only where a pose is camera-to-world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rl3dedit.errors import InputError
from rl3dedit.scene.pose import invert_pose


@dataclass
class Cameras:
    """A batch of V pinhole cameras sharing one image size.

    Fields:
        viewmats: (V, 4, 4) world-to-camera, OpenCV axes.
        Ks: (V, 3, 3) pixel intrinsics for `width` x `height` images.
        width, height: image size in pixels.
        image_paths: optional V paths of the images these cameras observed.
    """

    viewmats: torch.Tensor
    Ks: torch.Tensor
    width: int
    height: int
    image_paths: list[Path] | None = field(default=None)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "Cameras") -> None:
        if self.viewmats.ndim != 3 or self.viewmats.shape[1:] != (4, 4):
            raise ValueError(f"{source}: viewmats has shape {tuple(self.viewmats.shape)}, expected (V, 4, 4)")
        v = self.viewmats.shape[0]
        if tuple(self.Ks.shape) != (v, 3, 3):
            raise ValueError(f"{source}: Ks has shape {tuple(self.Ks.shape)}, expected ({v}, 3, 3)")
        if not (torch.isfinite(self.viewmats).all() and torch.isfinite(self.Ks).all()):
            raise ValueError(f"{source}: camera matrices contain NaN or inf")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"{source}: image size {self.width}x{self.height} is not positive")
        if self.image_paths is not None and len(self.image_paths) != v:
            raise ValueError(f"{source}: {len(self.image_paths)} image paths for {v} cameras")

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    @property
    def c2w(self) -> torch.Tensor:
        """(V, 4, 4) camera-to-world matrices (OpenCV axes): the closed-form rigid inverse of `viewmats`."""
        return invert_pose(self.viewmats)

    @property
    def centers(self) -> torch.Tensor:
        """(V, 3) camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    @property
    def device(self) -> torch.device:
        return self.viewmats.device

    def __getitem__(self, index: int | slice | list[int] | torch.Tensor) -> "Cameras":
        """Cameras selected by an index, slice, list or tensor of indices (always a batch)."""
        if isinstance(index, int):
            index = [index]
        idx = torch.as_tensor(index) if isinstance(index, list) else index
        paths = None
        if self.image_paths is not None:
            order = range(len(self))[index] if isinstance(index, slice) else [int(i) for i in torch.as_tensor(idx).reshape(-1)]
            paths = [self.image_paths[i] for i in order]
        return Cameras(self.viewmats[idx], self.Ks[idx], self.width, self.height, paths)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Cameras":
        return Cameras(
            self.viewmats.to(device=device, dtype=dtype), self.Ks.to(device=device, dtype=dtype),
            self.width, self.height, self.image_paths,
        )

    def rescaled(self, width: int, height: int) -> "Cameras":
        """The same cameras for images resized to `width` x `height` (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        Ks = self.Ks.clone()
        Ks[:, 0, :] *= sx
        Ks[:, 1, :] *= sy
        Ks[:, 2, :] = self.Ks[:, 2, :]
        return Cameras(self.viewmats.clone(), Ks, width, height, self.image_paths)


def look_at_viewmats(eyes: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """World-to-camera OpenCV view matrices of cameras at `eyes` looking at `target`.

    Args:
        eyes: (V, 3) camera centres in world coordinates.
        target: (3,) the point every camera looks at (it lands on the principal point).
        up: (3,) world up direction; it appears as image up (camera -y), so it must not be parallel to a view axis.
    Returns:
        (V, 4, 4) viewmats (x right, y down, z forward): rows of R are the camera axes in world space, t = -R @ eye.
    """
    if eyes.ndim != 2 or eyes.shape[1] != 3:
        raise ValueError(f"look_at_viewmats: eyes has shape {tuple(eyes.shape)}, expected (V, 3)")
    target = torch.as_tensor(target, dtype=eyes.dtype, device=eyes.device).reshape(3)
    up = torch.as_tensor(up, dtype=eyes.dtype, device=eyes.device).reshape(3)
    forward = target[None] - eyes
    if (forward.norm(dim=-1) < 1e-9).any():
        raise ValueError("look_at_viewmats: an eye coincides with the target")
    z = torch.nn.functional.normalize(forward, dim=-1)
    x = torch.linalg.cross(z, up.expand_as(z))
    if (x.norm(dim=-1) < 1e-6 * up.norm()).any():
        raise ValueError("look_at_viewmats: a viewing direction is parallel to `up`; pass a different up vector")
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.linalg.cross(z, x)
    rot = torch.stack([x, y, z], dim=1)
    viewmats = torch.zeros(eyes.shape[0], 4, 4, dtype=eyes.dtype, device=eyes.device)
    viewmats[:, :3, :3] = rot
    viewmats[:, :3, 3] = -(rot @ eyes[:, :, None])[:, :, 0]
    viewmats[:, 3, 3] = 1.0
    return viewmats


def intrinsics_from_fov(fov_x_deg: float, width: int, height: int) -> torch.Tensor:
    """(3, 3) pinhole intrinsics with horizontal field of view `fov_x_deg`, square pixels, centred principal point.

    fx = fy = (width / 2) / tan(fov_x / 2); (cx, cy) = (width / 2, height / 2) (pixel centres at +0.5).
    """
    if not 0.0 < fov_x_deg < 180.0:
        raise ValueError(f"intrinsics_from_fov: fov_x_deg must be in (0, 180), got {fov_x_deg}")
    if width <= 0 or height <= 0:
        raise ValueError(f"intrinsics_from_fov: image size {width}x{height} is not positive")
    focal = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float32)


ROTATION_TOLERANCE = 1e-3
"""Largest |R^T R - I| entry accepted for a stored rotation: float32 text round trips are ~1e-7; a scaled or sheared
matrix is far off."""

MAX_IMAGE_SIDE = 1 << 15
"""Largest width/height a camera file may declare (32768 px): larger sizes are typos that would allocate huge renders."""


def rotation_problem(rotation: torch.Tensor) -> str | None:
    """Why a 3x3 matrix is not a proper rotation (orthonormal with determinant +1), or None when it is one."""
    if tuple(rotation.shape) != (3, 3):
        return f"rotation has shape {tuple(rotation.shape)}, expected 3x3"
    r = rotation.to(torch.float64)
    if not torch.isfinite(r).all():
        return "rotation contains NaN or inf"
    error = float((r.T @ r - torch.eye(3, dtype=torch.float64)).abs().max())
    if error > ROTATION_TOLERANCE:
        return (f"rotation {[[round(float(v), 4) for v in row] for row in r]} is not orthonormal "
                f"(max |R^T R - I| = {error:.3g}: zero, scaled or sheared)")
    det = float(torch.linalg.det(r))
    if det < 0:
        return f"rotation has determinant {det:.3g} (a mirror image, not a rotation)"
    return None


def check_pose(pose: torch.Tensor, where: str) -> None:
    """Refuse a 4x4 rigid pose (camera-to-world or world-to-camera) that is not a rotation plus a translation, with
    an `InputError` naming `where` (file and frame)."""
    problem = rotation_problem(pose[:3, :3])
    if problem is None and not torch.allclose(pose[3].to(torch.float64),
                                              torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)):
        problem = f"last row {pose[3].tolist()} is not [0, 0, 0, 1]"
    if problem is not None:
        raise InputError(f"{where}: {problem}")


def checked_cameras(
    viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int, image_paths: list[Path] | None, source: object
) -> Cameras:
    """`Cameras(...)` as read from a file: errors name `source` (the file) and the camera. Beyond `Cameras`' own
    checks (shapes, NaN/inf, size) it refuses what renders blank or wrong: focal lengths <= 0, rotations that are
    not orthonormal or mirror, and image sizes over `MAX_IMAGE_SIDE`."""
    try:
        cameras = Cameras(viewmats, Ks, width, height, image_paths)
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from exc
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise InputError(f"{source}: image size {width}x{height} is larger than {MAX_IMAGE_SIDE} px per side")
    for i in range(len(cameras)):
        where = f"{source}: camera {i}" + (f" ({image_paths[i].name})" if image_paths is not None else "")
        fx, fy = float(Ks[i, 0, 0]), float(Ks[i, 1, 1])
        if fx <= 0 or fy <= 0:
            raise InputError(f"{where}: focal length fx = {fx:g}, fy = {fy:g}; both must be positive")
        check_pose(viewmats[i], where)
    return cameras


@dataclass
class CameraRecords:
    """Cameras as a capture file describes them: the pinhole part plus optional lens distortion.

    Fields:
        cameras: the pinhole cameras (viewmats, Ks, size, image paths); they describe the *undistorted* images.
        distortion: (V, 4) OpenCV k1, k2, p1, p2 per camera, or None when the file has no distortion. The images on
            disk are distorted by it; `load_capture` undistorts them with `undistort_images`.
    """

    cameras: Cameras
    distortion: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.distortion is not None and tuple(self.distortion.shape) != (len(self.cameras), 4):
            raise ValueError(
                f"CameraRecords: distortion has shape {tuple(self.distortion.shape)}, expected ({len(self.cameras)}, 4)"
            )

    @property
    def is_distorted(self) -> bool:
        return self.distortion is not None and bool((self.distortion != 0).any())

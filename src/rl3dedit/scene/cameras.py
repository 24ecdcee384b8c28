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
        """(V, 4, 4) camera-to-world matrices (OpenCV axes)."""
        return torch.linalg.inv(self.viewmats)

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


def checked_cameras(
    viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int, image_paths: list[Path] | None, source: object
) -> Cameras:
    """`Cameras(...)` whose validation errors (shapes, NaN/inf, size) name `source`, e.g. the file they came from."""
    try:
        return Cameras(viewmats, Ks, width, height, image_paths)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


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

"""Camera paths for scenes without cameras (`orbit_cameras`) and turntable renders (`turntable_path`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.views.select import capture_frame

_ARC_GAP_DEG = 90.0


def _plane_basis(up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors e1, e2 spanning the plane normal to `up` (e1 from world x, else world y; e2 = up x e1)."""
    for axis in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]):
        helper = torch.tensor(axis, dtype=up.dtype)
        e1 = helper - torch.dot(helper, up) * up
        if e1.norm() > 1e-3:
            e1 = e1 / e1.norm()
            return e1, torch.linalg.cross(up, e1)
    raise ValueError("up vector is degenerate")


def _ring_cameras(
    azimuth: torch.Tensor, center: torch.Tensor, radius: float, height: float, up: torch.Tensor, K: torch.Tensor,
    width: int, height_px: int,
) -> Cameras:
    e1, e2 = _plane_basis(up)
    eyes = center + radius * (azimuth.cos()[:, None] * e1 + azimuth.sin()[:, None] * e2) + height * up
    viewmats = look_at_viewmats(eyes, center, up).float()
    return Cameras(viewmats, K.float().expand(len(azimuth), 3, 3).clone(), width, height_px)


def orbit_cameras(
    num_views: int,
    *,
    center: Sequence[float] | torch.Tensor,
    radius: float,
    elevation_deg: float,
    width: int,
    height: int,
    fov_deg: float,
    up: Sequence[float] | torch.Tensor = (0.0, 0.0, 1.0),
    start_azimuth_deg: float = 0.0,
) -> Cameras:
    """`num_views` cameras evenly spaced on a horizontal circle around `center`, all looking at it.

    Args:
        center: (3,) the point looked at. radius: distance of every camera from it (world units).
        elevation_deg: angle above the plane normal to `up` (negative looks up from below).
        width, height, fov_deg: image size and horizontal field of view (`scene.intrinsics_from_fov`).
        up: (3,) world up; azimuth 0 lies along world x projected onto the plane normal to `up` (world y if x is
            parallel to up), and azimuth grows counter-clockwise seen from above.
    Returns:
        Cameras with OpenCV world-to-camera viewmats; image up is world up.
    """
    if num_views < 1 or radius <= 0:
        raise ValueError(f"orbit_cameras: need num_views >= 1 and radius > 0, got {num_views} and {radius}")
    up_t = torch.nn.functional.normalize(torch.as_tensor(up, dtype=torch.float64).reshape(3), dim=0)
    center_t = torch.as_tensor(center, dtype=torch.float64).reshape(3)
    azimuth = math.radians(start_azimuth_deg) + torch.arange(num_views, dtype=torch.float64) * (2 * math.pi / num_views)
    elevation = math.radians(elevation_deg)
    K = intrinsics_from_fov(fov_deg, width, height).to(torch.float64)
    return _ring_cameras(
        azimuth, center_t, radius * math.cos(elevation), radius * math.sin(elevation), up_t, K, width, height
    )


def turntable_path(
    cameras_or_scene_bounds: Cameras | torch.Tensor,
    num_frames: int,
    *,
    width: int = 512,
    height: int = 512,
    fov_deg: float = 50.0,
    elevation_deg: float = 20.0,
    up: Sequence[float] | torch.Tensor = (0.0, 0.0, 1.0),
) -> Cameras:
    """A smooth, looping camera path for turntable renders.

    With `Cameras`: an orbit fitted to them, keeping their size and median focal length. The centre is their focus
    point (`capture_frame`), up their mean up direction, radius and height the medians of their centres around
    that axis. If the cameras cover the full circle (no azimuth gap over 90 degrees) the path is a full turn;
    otherwise (forward-facing or partial captures) it sweeps across the covered arc and back (cosine easing), so it
    never shows the unobserved side.

    With a (2, 3) bounds tensor (min corner, max corner): a full orbit at `elevation_deg` whose `fov_deg` frames
    the bounding sphere, at `width` x `height` (the keyword arguments apply to this case only).
    """
    if num_frames < 1:
        raise ValueError(f"turntable_path: num_frames must be >= 1, got {num_frames}")
    if isinstance(cameras_or_scene_bounds, Cameras):
        return _fitted_path(cameras_or_scene_bounds, num_frames)
    bounds = torch.as_tensor(cameras_or_scene_bounds, dtype=torch.float64)
    if bounds.shape != (2, 3) or not torch.isfinite(bounds).all():
        raise ValueError(
            f"turntable_path: expected Cameras or a finite (2, 3) bounds tensor (min, max), got shape {tuple(bounds.shape)}"
        )
    half_diagonal = float((bounds[1] - bounds[0]).norm()) / 2
    radius = 1.1 * max(half_diagonal, 1e-6) / math.sin(math.radians(fov_deg) / 2)
    return orbit_cameras(
        num_frames, center=bounds.mean(0), radius=radius, elevation_deg=elevation_deg, width=width, height=height,
        fov_deg=fov_deg, up=up,
    )


def _fitted_path(cameras: Cameras, num_frames: int) -> Cameras:
    frame = capture_frame(cameras)
    e1, e2 = _plane_basis(frame.up)
    viewmats = cameras.viewmats.detach().to("cpu", torch.float64)
    centres = -(viewmats[:, :3, :3].transpose(1, 2) @ viewmats[:, :3, 3:])[:, :, 0] - frame.focus
    heights = centres @ frame.up
    planar = centres - heights[:, None] * frame.up
    azimuths = torch.atan2(planar @ e2, planar @ e1)
    radius = float(planar.norm(dim=1).median())
    sorted_az = azimuths.sort().values
    gaps = torch.cat([sorted_az[1:] - sorted_az[:-1], (sorted_az[:1] + 2 * math.pi) - sorted_az[-1:]])
    widest = int(gaps.argmax())
    t = torch.arange(num_frames, dtype=torch.float64) / num_frames
    if math.degrees(float(gaps[widest])) > _ARC_GAP_DEG:
        start = sorted_az[(widest + 1) % len(sorted_az)]
        span = 2 * math.pi - float(gaps[widest])
        azimuth = start + span * (1 - torch.cos(2 * math.pi * t)) / 2
    else:
        azimuth = azimuths[0] + 2 * math.pi * t
    focal = float(cameras.Ks[:, 0, 0].median())
    K = torch.tensor(
        [[focal, 0.0, cameras.width / 2], [0.0, focal, cameras.height / 2], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    return _ring_cameras(
        azimuth, frame.focus, max(radius, 1e-6), float(heights.median()), frame.up, K, cameras.width, cameras.height
    )

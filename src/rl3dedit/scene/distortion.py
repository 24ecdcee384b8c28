"""OpenCV radial-tangential lens distortion (k1 k2 p1 p2) and image undistortion written with torch.

The model (COLMAP `OPENCV`, nerfstudio `OPENCV`; COLMAP's `SIMPLE_RADIAL`/`RADIAL` are special cases with p = 0) maps
undistorted normalised coordinates (x, y) = ((u - cx) / fx, (v - cy) / fy) to distorted ones:

    r2 = x^2 + y^2,  radial = 1 + k1 r2 + k2 r2^2
    x_d = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    y_d = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

(OpenCV `cv::projectPoints` documentation; COLMAP `OpenCVCameraModel::Distortion`). Undistorting an image needs only
this forward map: each output (pinhole) pixel looks up its distorted position in the input, so the inverse is exact
up to bilinear interpolation and no iterative inversion is involved.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def distort_normalized(xy: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Apply OpenCV distortion to undistorted normalised image coordinates.

    Args:
        xy: (..., 2) normalised coordinates (x, y) of points in front of the camera.
        coeffs: (..., 4) distortion coefficients k1, k2, p1, p2, broadcastable against xy's leading dimensions
            (a plain (4,) applies to every point).
    Returns:
        (..., 2) distorted normalised coordinates.
    """
    k1, k2, p1, p2 = coeffs.unbind(-1)
    x, y = xy.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1)


def undistort_images(images: torch.Tensor, Ks: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Resample distorted photographs into ideal pinhole images with the same intrinsics.

    Args:
        images: (V, 3, H, W) distorted images in [0, 1].
        Ks: (V, 3, 3) pixel intrinsics of the camera (shared by the input and output images; pixel centres at +0.5).
        coeffs: (V, 4) OpenCV k1, k2, p1, p2 per image.
    Returns:
        (V, 3, H, W) undistorted images in [0, 1]: output pixel (u, v) takes the bilinear sample of the input at
        K distort(K^-1 (u, v)). Pixels whose source falls outside the input repeat the nearest border pixel (for the
        small distortions of real captures this is a band of a pixel or two at the corners).
    """
    v, _, h, w = images.shape
    if tuple(Ks.shape) != (v, 3, 3) or tuple(coeffs.shape) != (v, 4):
        raise ValueError(
            f"undistort_images: expected Ks ({v}, 3, 3) and coeffs ({v}, 4), got {tuple(Ks.shape)} and {tuple(coeffs.shape)}"
        )
    dtype = images.dtype if images.dtype.is_floating_point else torch.float32
    # Captures usually share one calibration: build each distinct sampling grid once.
    calib = torch.cat([Ks[:, :2, :].reshape(v, 6), coeffs], dim=1).to("cpu", torch.float64)
    unique, inverse = torch.unique(calib, dim=0, return_inverse=True)
    grids = [_sampling_grid(tuple(row.tolist()), h, w).to(device=images.device, dtype=dtype) for row in unique]
    out = torch.empty_like(images, dtype=dtype)
    for i in range(v):
        out[i] = F.grid_sample(
            images[i : i + 1].to(dtype), grids[int(inverse[i])][None], mode="bilinear", padding_mode="border",
            align_corners=False,
        )[0]
    return out  # bilinear weights are convex, so values stay in the input's [0, 1]


@functools.lru_cache(maxsize=8)
def _sampling_grid(calib: tuple[float, ...], h: int, w: int) -> torch.Tensor:
    """(H, W, 2) float32 grid_sample coordinates of the distorted source of each pinhole output pixel.

    `calib` is (fx, skew, cx, 0, fy, cy, k1, k2, p1, p2). Cached because captures undistort image after image with
    one calibration; callers must not modify the returned tensor.
    """
    fx, _, cx, _, fy, cy = calib[:6]
    coeffs = torch.tensor(calib[6:], dtype=torch.float64)
    vs, us = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij"
    )
    xy_d = distort_normalized(torch.stack([(us - cx) / fx, (vs - cy) / fy], dim=-1), coeffs)
    u_src, v_src = fx * xy_d[..., 0] + cx, fy * xy_d[..., 1] + cy
    # grid_sample with align_corners=False puts -1 / +1 at the outer pixel edges, i.e. continuous coords 0 and W.
    return torch.stack([2 * u_src / w - 1, 2 * v_src / h - 1], dim=-1).float()  # computed in float64

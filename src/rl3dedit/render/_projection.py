"""EWA projection of 3D Gaussians to screen-space ellipses (the pure-PyTorch twin of gsplat's projection).

Conventions: world-to-camera `viewmats` with OpenCV axes, pixel `Ks`, quaternions wxyz, pixel centres at
(x + 0.5, y + 0.5). Formulas follow Zwicker et al. (EWA splatting) as used by 3DGS (Kerbl et al. 2023, eq. 5):
Sigma = R S S^T R^T, Sigma' = J W Sigma W^T J^T + eps2d I, where W is the world-to-camera rotation and J the
Jacobian of the perspective projection at the Gaussian centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rl3dedit.scene.pose import quaternion_to_matrix

ALPHA_MIN = 1.0 / 255.0


@dataclass
class Projection:
    """Per-view screen-space Gaussians (V views, N Gaussians).

    Fields:
        means2d: (V, N, 2) projected centres in pixels.
        conics: (V, N, 3) inverse 2D covariance (a, b, c) = [[a, b], [b, c]].
        depths: (V, N) camera-space z in scene units.
        radii: (V, N) integer radius in pixels, the larger of the two `extents` (0 where culled); gsplat's
            visibility signal.
        extents: (V, N, 2) integer half-widths of the bounding box along x and y (0 where culled); see
            `project_gaussians` for the opacity-aware extent.
        visible: (V, N) bool, survives near/far, determinant, opacity, radius and image-bounds culling.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    radii: Tensor
    extents: Tensor
    visible: Tensor


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """World covariance Sigma = R diag(s)^2 R^T. quats (N, 4) wxyz, scales (N, 3) activated -> (N, 3, 3)."""
    m = quaternion_to_matrix(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: Tensor,  # (N, 3)
    covars: Tensor,  # (N, 3, 3)
    viewmats: Tensor,  # (V, 4, 4)
    Ks: Tensor,  # (V, 3, 3)
    width: int,
    height: int,
    near_plane: float,
    far_plane: float,
    eps2d: float,
    radius_clip: float,
    opacities: Tensor | None = None,  # (N,) activated
) -> Projection:
    """Project N world Gaussians into V pinhole cameras.

    Bounding boxes are gsplat's (1.5, opacity-aware, after Radl et al. 2024, arXiv 2402.00525 appendix B.2): the
    half-width along x is ceil(k sqrt(Sigma'_xx)) with k = min(3.33, sqrt(2 ln(255 o))), the Mahalanobis radius at
    which o exp(-k^2 / 2) falls to the 1/255 skip threshold, so every pixel a Gaussian can reach lies inside its
    box and tiles never decide which faint tails are drawn. Gaussians with o < 1/255 are culled (they can never
    reach a pixel). Without `opacities`, k = 3.33.

    The Jacobian uses the centre's normalised coordinates clamped to 1.3x the half field of view, as gsplat
    does, so Gaussians far outside the frustum do not get degenerate footprints. Culled Gaussians keep finite
    values (radius 0, `visible` False); they are never rasterized.
    """
    rot, trans = viewmats[:, None, :3, :3], viewmats[:, None, :3, 3]  # (V, 1, 3, 3), (V, 1, 3)
    means_c = (rot @ means[None, :, :, None]).squeeze(-1) + trans  # (V, N, 3)
    x, y, z = means_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # (V, 1)
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]

    in_depth = (z > near_plane) & (z < far_plane)
    # Culled Gaussians get a safe depth so nothing below divides by ~0; their values are never used.
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x / z_safe))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y / z_safe))
    zeros = torch.zeros_like(z_safe)
    jac = torch.stack(
        [fx / z_safe, zeros, -fx * tx / z_safe**2, zeros, fy / z_safe, -fy * ty / z_safe**2], dim=-1
    ).reshape(*z.shape, 2, 3)  # (V, N, 2, 3)
    jw = jac @ rot  # (V, N, 2, 3)
    cov2d = jw @ covars[None] @ jw.transpose(-1, -2)  # (V, N, 2, 2)
    a = cov2d[..., 0, 0] + eps2d
    b = cov2d[..., 0, 1]
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    det_ok = det > 0
    det_safe = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)  # (V, N, 3)

    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)  # (V, N, 2)

    with torch.no_grad():
        if opacities is None:
            k = torch.full_like(z, 3.33)
            opaque_enough = torch.ones_like(in_depth)
        else:
            o = opacities.detach()[None].to(z.dtype)  # (1, N)
            opaque_enough = o >= ALPHA_MIN
            k = torch.sqrt(2.0 * torch.log(o.clamp_min(ALPHA_MIN) / ALPHA_MIN)).clamp_max(3.33).expand_as(z)
        extents = torch.ceil(k[..., None] * torch.sqrt(torch.stack([a, c], dim=-1).clamp_min(0)))
        radii = extents.max(dim=-1).values
        mx, my = means2d.unbind(-1)
        on_image = (
            (mx + extents[..., 0] > 0) & (mx - extents[..., 0] < width)
            & (my + extents[..., 1] > 0) & (my - extents[..., 1] < height)
        )
        visible = in_depth & det_ok & opaque_enough & (radii > radius_clip) & on_image
        radii = torch.where(visible, radii, torch.zeros_like(radii)).to(torch.int32)
        extents = torch.where(visible[..., None], extents, torch.zeros_like(extents)).to(torch.int32)
    return Projection(means2d, conics, z, radii, extents, visible)

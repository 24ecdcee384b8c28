"""Real spherical harmonics up to degree 3 with the INRIA / gsplat constants and signs.

The basis is the real SH with the Condon-Shortley phase kept, ordered m = -l..l within each band:
for m < 0 it is sqrt(2) Im(Y_l^|m|), for m > 0 sqrt(2) Re(Y_l^m), where Y_l^m is the complex SH with the
(-1)^m phase. This is why the degree-1 terms read (-C1 y, C1 z, -C1 x). Colour = SH(direction) + 0.5, clamped
at >= 0, as gsplat's `rasterization()` (https://docs.gsplat.studio).
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    """(degree + 1)^2 coefficients per channel."""
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """SH basis functions evaluated at unit directions.

    Args:
        degree: 0..3.
        dirs: (..., 3) unit vectors (x, y, z) in world coordinates.

    Returns:
        (..., (degree + 1)^2) basis values, DC first, then band by band with m = -l..l.
    """
    if not 0 <= degree <= 3:
        raise ValueError(f"sh_degree must be in 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            SH_C2[0] * x * y,
            SH_C2[1] * y * z,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * x * z,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3.0 * xx - yy),
            SH_C3[1] * x * y * z,
            SH_C3[2] * y * (4.0 * zz - xx - yy),
            SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            SH_C3[4] * x * (4.0 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def sh_to_color(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour from SH coefficients for given view directions, as gsplat: clamp_min(SH(d) + 0.5, 0).

    Args:
        degree: SH degree used, 0..3; only the first (degree + 1)^2 coefficients are read.
        dirs: (..., 3) directions (Gaussian centre - camera centre); normalised here.
        coeffs: (..., K, 3) coefficients with K >= (degree + 1)^2, DC first; broadcastable against `dirs`.

    Returns:
        (..., 3) colours, >= 0 (not clamped above).
    """
    k = num_sh_bases(degree)
    if coeffs.shape[-2] < k:
        raise ValueError(f"sh_degree={degree} needs {k} SH coefficients per channel, colors has {coeffs.shape[-2]}")
    basis = sh_basis(degree, torch.nn.functional.normalize(dirs, dim=-1))
    return ((basis[..., :, None] * coeffs[..., :k, :]).sum(dim=-2) + 0.5).clamp_min(0.0)

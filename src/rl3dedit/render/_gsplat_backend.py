"""The gsplat backend: gsplat's fused CUDA `rasterization()` behind our contract (CUDA tensors only).

gsplat is imported lazily, only here and only for CUDA tensors: on CPU tensors gsplat either starts a doomed
JIT build or fails on a missing extension (reference/gaussian_splatting.md section 2.2).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from torch import Tensor


def gsplat_available() -> bool:
    """True when gsplat is importable (does not import it)."""
    return importlib.util.find_spec("gsplat") is not None


def rasterize_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    **kwargs: Any,
) -> tuple[Tensor, Tensor, dict]:
    """Call `gsplat.rasterization` with classic (non-antialiased) rasterization and unpacked intermediates.

    Unpacked mode keeps `meta["means2d"]` as a dense (V, N, 2) tensor, as our PyTorch backend returns it.
    Radii are reduced to (V, N) (gsplat >= 1.5 returns per-axis (V, N, 2) radii).
    """
    if means.device.type != "cuda":
        raise RuntimeError(
            f"render backend 'gsplat' needs CUDA tensors, got tensors on {means.device}; "
            "pass backend='torch' (or 'auto') to render on this device"
        )
    if not gsplat_available():
        raise RuntimeError(
            "render backend 'gsplat' requested but gsplat is not installed (pip install 'rl3dedit[cuda]')"
        )
    import gsplat

    colors_out, alphas, meta = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        packed=False, rasterize_mode="classic", **kwargs,
    )
    radii = meta["radii"]
    if radii.dim() == meta["means2d"].dim():
        meta["radii"] = radii.max(dim=-1).values
    return colors_out, alphas, meta

"""The gsplat backend: gsplat's fused CUDA `rasterization()` behind our contract.

gsplat's Python package imports without its kernels: they come from a prebuilt wheel or are JIT-compiled by
`gsplat.cuda._backend` on first import (needs nvcc; a few minutes the first time, then cached under
~/.cache/torch_extensions). Without them gsplat's kernel module is None and every call fails with
`AttributeError: 'NoneType' object has no attribute ...`. `gsplat_status` probes the kernels once per process so
backend selection can fall back to our PyTorch rasterizer with one warning that says why.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the CUDA toolkit (nvcc) matching your torch build so gsplat can compile its kernels on first use "
    "(a few minutes, cached afterwards), or install a prebuilt gsplat wheel for your torch/CUDA versions from "
    "https://docs.gsplat.studio/whl"
)


@dataclass(frozen=True)
class GsplatStatus:
    """What `gsplat_status` found.

    Fields:
        installed: gsplat's Python package is importable.
        version: its version ("" when not installed).
        kernels: its CUDA kernels loaded in this process (always False without a CUDA device).
        reason: why the kernels are not usable, with the fix ("" when they are).
    """

    installed: bool
    version: str
    kernels: bool
    reason: str


def gsplat_installed() -> bool:
    """True when gsplat's Python package is importable (does not import it)."""
    return importlib.util.find_spec("gsplat") is not None


@functools.cache
def gsplat_status() -> GsplatStatus:
    """Whether gsplat and its CUDA kernels are usable here; probed once per process (for `rl3dedit doctor` too).

    On a CUDA machine this imports `gsplat.cuda._backend`, which JIT-compiles the kernels when no prebuilt ones
    are found and nvcc is available (minutes, once). Without a CUDA device nothing is imported: a build there
    cannot succeed.
    """
    if not gsplat_installed():
        return GsplatStatus(False, "", False, "gsplat is not installed (pip install 'rl3dedit[cuda]')")
    version = importlib.metadata.version("gsplat")
    if not torch.cuda.is_available():
        return GsplatStatus(True, version, False, "torch has no CUDA device; gsplat's kernels only run on CUDA")
    try:
        from gsplat.cuda._backend import _C
    except Exception as exc:  # a failed JIT build raises OSError, ImportError or RuntimeError
        return GsplatStatus(True, version, False, f"gsplat's CUDA kernels failed to load ({type(exc).__name__}: "
                                                   f"{exc}); {INSTALL_HINT}")
    if _C is None:
        return GsplatStatus(True, version, False, f"gsplat found no compiled kernels and no CUDA toolkit; "
                                                   f"{INSTALL_HINT}")
    return GsplatStatus(True, version, True, "")


@functools.cache
def _warn_fallback(reason: str) -> None:
    logger.warning("render backend 'auto': using the PyTorch rasterizer (slower) because %s", reason)


def gsplat_usable(device: torch.device) -> bool:
    """True when gsplat's kernels can rasterize tensors on `device`; warns once per reason when a CUDA device
    has to fall back (a CPU device needs no warning: gsplat never runs there)."""
    if device.type != "cuda":
        return False
    status = gsplat_status()
    if not status.kernels:
        _warn_fallback(status.reason)
    return status.kernels


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
    Radii are reduced to (V, N) (gsplat >= 1.5 returns per-axis (V, N, 2) radii). The device check lives in
    backend selection, so tests can run this plumbing on CPU against a stand-in for gsplat's kernels.
    """
    import gsplat

    colors_out, alphas, meta = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        packed=False, rasterize_mode="classic", **kwargs,
    )
    radii = meta["radii"]
    if radii.dim() == meta["means2d"].dim():
        meta["radii"] = radii.max(dim=-1).values
    return colors_out, alphas, meta

"""The public rendering contract: `rasterize` (gsplat's `rasterization()` signature) and `render` (scene level).

`rasterize` takes plain tensors and returns channels-last images, exactly like gsplat 1.5
(https://docs.gsplat.studio, `gsplat.rasterization`); `render` takes a `GaussianScene` and `Cameras` and converts the
channels-last output to our (V, C, H, W) convention. Backends: gsplat's CUDA kernels for CUDA tensors when
gsplat is installed, our pure-PyTorch rasterizer otherwise; callers learn which ran from `RenderOutput.backend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from rl3dedit.render._gsplat_backend import gsplat_status, gsplat_usable, rasterize_gsplat
from rl3dedit.render._projection import covariance_3d, project_gaussians
from rl3dedit.render._sh import sh_to_color
from rl3dedit.render._torch_backend import TILE_SIZE, rasterize_torch
from rl3dedit.render.config import RENDER_CHUNK_SIZE
from rl3dedit.scene import Cameras, GaussianScene

RenderMode = Literal["RGB", "ED", "RGB+ED"]
RasterMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
Backend = Literal["auto", "torch", "gsplat"]
_RASTER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")


@dataclass
class RenderOutput:
    """Rendered views in our (V, C, H, W) convention, with gsplat's per-Gaussian intermediates.

    Fields:
        rgb: (V, 3, H, W) colour composited over the background, >= 0 and not clamped above (SH colours may
            exceed 1); None in mode "ED".
        depth: (V, 1, H, W) expected depth sum(w_i z_i) / sum(w_i), camera z in scene units, 0 where alpha is 0;
            None in mode "RGB".
        alpha: (V, 1, H, W) accumulated opacity in [0, 1].
        backend: "torch" or "gsplat", whichever rasterized.
        means2d: (V, N, 2) projected centres in pixels; call `.retain_grad()` on it before backward for
            densification statistics.
        radii: (V, N) integer screen radius in pixels (0 = not visible in that view).
        depths: (V, N) camera z of each centre.
        conics: (V, N, 3) inverse 2D covariance (a, b, c) of [[a, b], [b, c]].
    """

    rgb: Tensor | None
    depth: Tensor | None
    alpha: Tensor
    backend: str
    means2d: Tensor
    radii: Tensor
    depths: Tensor
    conics: Tensor

    @property
    def width(self) -> int:
        return self.alpha.shape[-1]

    @property
    def height(self) -> int:
        return self.alpha.shape[-2]


def _choose_backend(backend: str, device: torch.device) -> str:
    """The backend that rasterizes tensors on `device`: "auto" takes gsplat only when its kernels load (else one
    warning naming the fix); an explicit "gsplat" on a non-CUDA device or without kernels is an error."""
    if backend not in ("auto", "torch", "gsplat"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'gsplat', got {backend!r}")
    if backend == "auto":
        return "gsplat" if gsplat_usable(device) else "torch"
    if backend == "gsplat":
        if device.type != "cuda":
            raise RuntimeError(
                f"render backend 'gsplat' needs CUDA tensors, got tensors on {device}; "
                "pass backend='torch' (or 'auto') to render on this device"
            )
        status = gsplat_status()
        if not status.kernels:
            raise RuntimeError(f"render backend 'gsplat' requested but {status.reason}")
    return backend


def _check_inputs(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                  viewmats: Tensor, Ks: Tensor, width: int, height: int, sh_degree: int | None) -> None:
    n = means.shape[0] if means.ndim == 2 else -1
    expected = {"means": (means, (n, 3)), "quats": (quats, (n, 4)), "scales": (scales, (n, 3)),
                "opacities": (opacities, (n,))}
    for name, (value, shape) in expected.items():
        if tuple(value.shape) != shape:
            raise ValueError(f"rasterize: {name} has shape {tuple(value.shape)}, expected {shape} (N={n})")
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"rasterize: viewmats has shape {tuple(viewmats.shape)}, expected (C, 4, 4)")
    c = viewmats.shape[0]
    if tuple(Ks.shape) != (c, 3, 3):
        raise ValueError(f"rasterize: Ks has shape {tuple(Ks.shape)}, expected ({c}, 3, 3)")
    color_dims = 2 if sh_degree is None else 3
    if colors.ndim not in (color_dims, color_dims + 1) or colors.shape[colors.ndim - color_dims] != n or (
        colors.ndim == color_dims + 1 and colors.shape[0] != c
    ):
        wanted = "(N, D) or (C, N, D)" if sh_degree is None else "(N, K, 3) or (C, N, K, 3) SH coefficients"
        raise ValueError(f"rasterize: colors has shape {tuple(colors.shape)}, expected {wanted} with N={n}, C={c}")
    if width <= 0 or height <= 0:
        raise ValueError(f"rasterize: image size {width}x{height} is not positive")


def rasterize(
    means: Tensor,  # (N, 3)
    quats: Tensor,  # (N, 4) wxyz
    scales: Tensor,  # (N, 3) activated
    opacities: Tensor,  # (N,) activated
    colors: Tensor,  # (N, D), (C, N, D), or SH (N, K, 3), (C, N, K, 3)
    viewmats: Tensor,  # (C, 4, 4) world-to-camera, OpenCV
    Ks: Tensor,  # (C, 3, 3)
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    render_mode: RasterMode = "RGB",
    backgrounds: Tensor | None = None,  # (C, D)
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Rasterize N 3D Gaussians into C pinhole cameras (gsplat's `rasterization()` contract, classic mode).

    Args:
        means, quats, scales, opacities: world centres, wxyz rotations (normalised inside), activated scales and
            activated opacities in [0, 1].
        colors: post-activation features when `sh_degree` is None; otherwise SH coefficients (DC first) with
            (sh_degree + 1)^2 <= K, turned into colours as clamp_min(SH(dir) + 0.5, 0) with
            dir = centre - camera centre.
        viewmats, Ks: world-to-camera matrices (OpenCV axes) and pixel intrinsics; not differentiated.
        width, height: image size; pixel (i, j) has its centre at (i + 0.5, j + 0.5).
        render_mode: "RGB", "D" (accumulated depth), "ED" (expected depth) or "RGB+D" / "RGB+ED" (depth last).
        backgrounds: (C, D) colour behind the Gaussians, added as T_final * background (colour channels only).
        near_plane, far_plane: camera-z culling; eps2d: screen-space low-pass added to the 2D covariance (px^2);
        radius_clip: Gaussians whose screen radius (`meta["radii"]`) is <= this many pixels are skipped.
        backend: "auto" (gsplat for CUDA tensors when installed), "torch" or "gsplat" (CUDA only).

    Returns:
        colors: (C, H, W, X), X = D, 1 or D + 1 by mode; alphas: (C, H, W, 1);
        meta: "means2d" (C, N, 2), "radii" (C, N), "depths" (C, N), "conics" (C, N, 3), "width", "height",
        "tile_size", "backend".

    Example:
        >>> colors, alphas, meta = rasterize(means, quats, scales, opacities, rgb, viewmats, Ks, 64, 64)
    """
    if render_mode not in _RASTER_MODES:
        raise ValueError(f"render_mode must be one of {_RASTER_MODES}, got {render_mode!r}")
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree)
    chosen = _choose_backend(backend, means.device)
    if chosen == "gsplat":
        out_colors, alphas, meta = rasterize_gsplat(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            sh_degree=sh_degree, render_mode=render_mode, backgrounds=backgrounds,
            near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, radius_clip=radius_clip,
        )
        meta["backend"] = "gsplat"
        return out_colors, alphas, meta

    num_views = viewmats.shape[0]
    proj = project_gaussians(means, covariance_3d(quats, scales), viewmats, Ks, width, height,
                             near_plane, far_plane, eps2d, radius_clip, opacities)
    features = []
    if "RGB" in render_mode:
        if sh_degree is not None:
            rot, trans = viewmats.detach()[:, :3, :3], viewmats.detach()[:, :3, 3]
            campos = -(rot.transpose(1, 2) @ trans[..., None])[:, None, :, 0]  # (C, 1, 3) centre = -R^T t
            coeffs = colors if colors.ndim == 4 else colors[None]
            features.append(sh_to_color(sh_degree, means[None] - campos, coeffs))
        else:
            features.append(colors if colors.ndim == 3 else colors[None].expand(num_views, -1, -1))
    if "D" in render_mode:
        features.append(proj.depths[..., None])
    feats = torch.cat(features, dim=-1) if len(features) > 1 else features[0]  # (C, N, X)
    accum, log_trans = rasterize_torch(proj, opacities, feats, width, height)
    trans, alphas = torch.exp(log_trans), -torch.expm1(log_trans)

    parts = []
    if "RGB" in render_mode:
        rgb = accum[..., : accum.shape[-1] - ("D" in render_mode)]
        if backgrounds is not None:
            rgb = rgb + trans * backgrounds.to(rgb)[:, None, None, :]
        parts.append(rgb)
    if "D" in render_mode:
        depth = accum[..., -1:]
        parts.append(depth / alphas.clamp_min(1e-10) if render_mode.endswith("ED") else depth)
    out_colors = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
    meta = {"means2d": proj.means2d, "radii": proj.radii, "depths": proj.depths, "conics": proj.conics,
            "width": width, "height": height, "tile_size": TILE_SIZE, "backend": "torch"}
    return out_colors, alphas, meta


def _background_tensor(background: tuple[float, float, float] | Tensor | None, num_views: int,
                       like: Tensor) -> Tensor | None:
    if background is None:
        return None
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if bg.shape == (3,):
        return bg.expand(num_views, 3)
    if bg.shape == (num_views, 3):
        return bg
    raise ValueError(f"render: background has shape {tuple(bg.shape)}, expected (3,) or ({num_views}, 3)")


def render(
    scene: GaussianScene,
    cameras: Cameras,
    mode: RenderMode = "RGB+ED",
    background: tuple[float, float, float] | Tensor | None = None,
    backend: Backend = "auto",
    sh_degree: int | None = None,
    chunk_size: int | None = None,
) -> RenderOutput:
    """Render a Gaussian scene from V cameras (activations applied, SH evaluated, channels-first output).

    Args:
        scene: raw parameters; quats are normalised, scales exponentiated, opacities passed through sigmoid.
        cameras: V world-to-camera OpenCV cameras sharing one image size.
        mode: "RGB", "ED" (expected depth) or "RGB+ED".
        background: RGB in [0, 1] as a tuple, a (3,) or a (V, 3) tensor; black when None.
        backend: see `rasterize`.
        sh_degree: SH bands to use (0..scene.sh_degree); all of the scene's when None.
        chunk_size: at most this many views per rasterizer call, outputs concatenated (None: all at once). Use
            `RenderConfig.chunk_size` for gradient-free renders; it bounds the rasterizer's peak memory (see
            `render_images`), not the (V, N) per-Gaussian outputs.

    Returns:
        RenderOutput with rgb (V, 3, H, W), depth (V, 1, H, W), alpha (V, 1, H, W) and the per-Gaussian
        intermediates (means2d, radii, depths, conics).

    Example:
        >>> out = render(scene, cameras[:9], mode="RGB", background=(1.0, 1.0, 1.0))
        >>> views = out.rgb.clamp(0, 1)  # (9, 3, H, W)
    """
    if mode not in ("RGB", "ED", "RGB+ED"):
        raise ValueError(f"render: mode must be 'RGB', 'ED' or 'RGB+ED', got {mode!r}")
    degree = scene.sh_degree if sh_degree is None else sh_degree
    if not 0 <= degree <= scene.sh_degree:
        raise ValueError(f"render: sh_degree={sh_degree} but the scene has SH up to degree {scene.sh_degree}")
    num_views = len(cameras)
    background = background if background is not None else (0.0, 0.0, 0.0)
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"render: chunk_size must be >= 1 or None, got {chunk_size}")
        if num_views > chunk_size:
            backgrounds = _background_tensor(background, num_views, scene.means)
            parts = [render(scene, cameras[idx], mode, backgrounds[idx], backend, sh_degree)
                     for idx in _chunk_indices(num_views, chunk_size)]
            return _concat(parts)
    colors, alphas, meta = rasterize(
        scene.means, scene.quats, scene.scales, scene.opacities, scene.sh_coeffs,
        cameras.viewmats.to(scene.means), cameras.Ks.to(scene.means), cameras.width, cameras.height,
        sh_degree=degree, render_mode=mode, backgrounds=_background_tensor(background, num_views, scene.means),
        backend=backend,
    )
    chw = colors.permute(0, 3, 1, 2)  # (V, X, H, W)
    rgb = chw[:, :3] if "RGB" in mode else None
    depth = chw[:, -1:] if mode.endswith("ED") else None
    return RenderOutput(rgb=rgb, depth=depth, alpha=alphas.permute(0, 3, 1, 2), backend=meta["backend"],
                        means2d=meta["means2d"], radii=meta["radii"], depths=meta["depths"], conics=meta["conics"])


def _chunk_indices(num_views: int, chunk_size: int) -> list[list[int]]:
    return [list(range(start, min(start + chunk_size, num_views))) for start in range(0, num_views, chunk_size)]


def _concat(parts: list[RenderOutput]) -> RenderOutput:
    def cat(name: str) -> Tensor | None:
        values = [getattr(part, name) for part in parts]
        return None if values[0] is None else torch.cat(values)

    return RenderOutput(rgb=cat("rgb"), depth=cat("depth"), alpha=cat("alpha"), backend=parts[0].backend,
                        means2d=cat("means2d"), radii=cat("radii"), depths=cat("depths"), conics=cat("conics"))


@torch.no_grad()
def render_images(
    scene: GaussianScene,
    cameras: Cameras,
    background: tuple[float, float, float] | Tensor | None = None,
    *,
    sh_degree: int | None = None,
    backend: Backend = "auto",
    chunk_size: int = RENDER_CHUNK_SIZE,
) -> Tensor:
    """(V, 3, H, W) images in [0, 1] for viewing, saving or scoring: `render` in "RGB" mode without gradients,
    clamped, `chunk_size` views per rasterizer call (`RenderConfig.chunk_size`).

    Chunking bounds memory: unpacked gsplat expands the SH coefficients per view, C x N x K x 3 floats (about
    0.18 GiB per view per million Gaussians at SH degree 3), so a 36-frame turntable in one call would need
    ~6.5 GiB per million Gaussians for that tensor alone.
    """
    if chunk_size < 1:
        raise ValueError(f"render_images: chunk_size must be >= 1, got {chunk_size}")
    backgrounds = _background_tensor(background if background is not None else (0.0, 0.0, 0.0), len(cameras),
                                     scene.means)
    # Only the images are kept from each chunk: the per-Gaussian outputs would add (V, N) tensors per view.
    return torch.cat([
        render(scene, cameras[idx], mode="RGB", background=backgrounds[idx], backend=backend,
               sh_degree=sh_degree).rgb.clamp(0, 1)
        for idx in _chunk_indices(len(cameras), chunk_size)
    ])

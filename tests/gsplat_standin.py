"""A CPU stand-in for gsplat's CUDA `rasterization()`, for tests (classic mode, unpacked, pinhole cameras).

It runs gsplat's own pure-PyTorch reference functions (`gsplat.cuda._torch_impl`: covariance, EWA projection,
spherical harmonics, tile intersection and offsets), imported at test time, and adds what gsplat only has in CUDA,
written from gsplat 1.5's kernels (https://github.com/nerfstudio-project/gsplat, gsplat/cuda/csrc):
- the projection's opacity-aware bounding box: extent k = min(3.33, sqrt(2 ln(o / (1/255)))) standard deviations
  per axis, Gaussians with o < 1/255 culled, `radius_clip` culling both radii, image-bounds culling;
- per-pixel front-to-back compositing over the depth-sorted Gaussians of the pixel's tile:
  sigma = 0.5 (a dx^2 + c dy^2) + b dx dy, alpha = min(0.999, o exp(-sigma)), skip when sigma < 0 or
  alpha < 1/255, stop before the Gaussian that would take the transmittance to <= 1e-4, and
  colour = sum alpha_i T_i c_i + T_final * background; "ED" divides the depth channel by alpha (clamped 1e-10).
Plain autograd runs through it (the skip/stop masks are constants), so gradients can be compared too.
It is deliberately simple, a loop over the Gaussians of each tile: keep scenes to a few hundred Gaussians.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0


def reference():
    """gsplat's pure-PyTorch reference module, or a skip saying why it is missing."""
    return pytest.importorskip(
        "gsplat.cuda._torch_impl",
        reason="gsplat is not installed (pip install -e '.[dev]'): the CPU stand-in uses its reference functions",
    )


def _composite_tile(pix: Tensor, ids: Tensor, means2d: Tensor, conics: Tensor, opacities: Tensor,
                    features: Tensor) -> tuple[Tensor, Tensor]:
    """Composite the Gaussians `ids` (front to back) at pixel centres `pix` (P, 2). Returns ((P, X), (P,) T)."""
    accum = features.new_zeros(pix.shape[0], features.shape[-1])
    trans = features.new_ones(pix.shape[0])
    done = torch.zeros(pix.shape[0], dtype=torch.bool)
    for g in ids.tolist():
        dx, dy = (means2d[g] - pix).unbind(-1)
        a, b, c = conics[g].unbind(-1)
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        alpha = torch.clamp(opacities[g] * torch.exp(-sigma), max=0.999)
        with torch.no_grad():
            used = ~done & (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
            stops = used & (trans * (1 - alpha) <= 1e-4)
            used &= ~stops
            done |= stops
        weight = torch.where(used, alpha * trans, torch.zeros_like(alpha))
        accum = accum + weight[:, None] * features[g]
        trans = torch.where(used, trans * (1 - alpha), trans)
    return accum, trans


def rasterization(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor, viewmats: Tensor, Ks: Tensor,
    width: int, height: int, near_plane: float = 0.01, far_plane: float = 1e10, radius_clip: float = 0.0,
    eps2d: float = 0.3, sh_degree: int | None = None, packed: bool = True, tile_size: int = 16,
    backgrounds: Tensor | None = None, render_mode: str = "RGB", rasterize_mode: str = "classic",
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """gsplat 1.5's `rasterization()` signature and outputs for the subset above (no extra batch dimensions)."""
    ref = reference()
    if packed or rasterize_mode != "classic":
        raise NotImplementedError("the stand-in covers unpacked, classic rasterization only")
    num_views, num_gauss = viewmats.shape[0], means.shape[0]
    covars, _ = ref._quat_scale_to_covar_preci(quats, scales, True, False, triu=False)
    _, means2d, depths, conics, _ = ref._fully_fused_projection(
        means, covars, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane, far_plane=far_plane)
    with torch.no_grad():  # the CUDA projection's bounding box and culling
        a, b, c = conics.unbind(-1)
        det_inv = a * c - b * b
        sd = torch.stack([c / det_inv, a / det_inv], dim=-1).sqrt()  # (C, N, 2) sqrt of the covariance diagonal
        o = opacities.detach()[None, :, None]
        k = torch.sqrt(2 * torch.log(o.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp_max(3.33)
        radii = torch.ceil(k * sd)
        mx, my = means2d.detach().unbind(-1)
        keep = ((depths > near_plane) & (depths < far_plane) & (det_inv > 0) & (o[..., 0] >= ALPHA_THRESHOLD)
                & ~((radii[..., 0] <= radius_clip) & (radii[..., 1] <= radius_clip))
                & (mx + radii[..., 0] > 0) & (mx - radii[..., 0] < width)
                & (my + radii[..., 1] > 0) & (my - radii[..., 1] < height))
        radii = torch.where(keep[..., None], radii, torch.zeros_like(radii)).int()

    if sh_degree is None:
        feats = colors if colors.dim() == 3 else colors[None].expand(num_views, -1, -1)
    else:
        campos = torch.inverse(viewmats)[:, None, :3, 3]  # (C, 1, 3)
        coeffs = colors if colors.dim() == 4 else colors[None].expand(num_views, -1, -1, -1)
        dirs = means[None] - campos
        feats = torch.clamp_min(ref._spherical_harmonics(sh_degree, dirs, coeffs) + 0.5, 0.0)
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = torch.cat([feats, depths[..., None]], dim=-1)
        backgrounds = None if backgrounds is None else torch.cat([backgrounds, backgrounds.new_zeros(num_views, 1)], -1)
    elif render_mode in ("D", "ED"):
        feats = depths[..., None]
        backgrounds = None if backgrounds is None else backgrounds.new_zeros(num_views, 1)

    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    _, isect_ids, flatten_ids = ref._isect_tiles(means2d.detach(), radii, depths.detach(), tile_size, tiles_x, tiles_y)
    offsets = ref._isect_offset_encode(isect_ids, num_views, tiles_x, tiles_y).flatten().tolist()
    flat_means2d, flat_conics = means2d.reshape(-1, 2), conics.reshape(-1, 3)
    flat_opacities = opacities[None].expand(num_views, -1).reshape(-1)
    flat_feats = feats.reshape(num_views * num_gauss, -1)

    images, alphas = [], []
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pix_all = torch.stack([xs, ys], dim=-1).to(means.dtype) + 0.5  # (H, W, 2) pixel centres
    for view in range(num_views):
        image = means.new_zeros(height, width, flat_feats.shape[-1])
        trans_image = means.new_ones(height, width)
        for ty in range(tiles_y):
            for tx in range(tiles_x):
                slot = (view * tiles_y + ty) * tiles_x + tx
                end = offsets[slot + 1] if slot + 1 < len(offsets) else len(flatten_ids)
                ids = flatten_ids[offsets[slot]:end]
                rows = slice(ty * tile_size, min((ty + 1) * tile_size, height))
                cols = slice(tx * tile_size, min((tx + 1) * tile_size, width))
                pix = pix_all[rows, cols].reshape(-1, 2)
                accum, trans = _composite_tile(pix, ids, flat_means2d, flat_conics, flat_opacities, flat_feats)
                index = (torch.arange(rows.start, rows.stop)[:, None], torch.arange(cols.start, cols.stop)[None, :])
                shape = (rows.stop - rows.start, cols.stop - cols.start)
                image = image.index_put(index, accum.reshape(*shape, -1))
                trans_image = trans_image.index_put(index, trans.reshape(shape))
        if backgrounds is not None:
            image = image + trans_image[..., None] * backgrounds[view]
        images.append(image)
        alphas.append(1 - trans_image[..., None])
    out, alpha = torch.stack(images), torch.stack(alphas)
    if render_mode in ("ED", "RGB+ED"):
        out = torch.cat([out[..., :-1], out[..., -1:] / alpha.clamp(min=1e-10)], dim=-1)
    meta = {"radii": radii, "means2d": means2d, "depths": depths, "conics": conics, "width": width,
            "height": height, "tile_size": tile_size, "n_cameras": num_views}
    return out, alpha, meta

"""Our pure-PyTorch rasterizer: gsplat's `rasterization()` contract on any device, differentiable by autograd.

Design (reference/gaussian_splatting.md sections 5.1-5.2, gsplat's tile rasterizer without its CUDA kernels):
1. EWA projection of every Gaussian into every view (`_projection.py`), colours from SH (`_sh.py`).
2. Tile intersection: each visible Gaussian is paired with the 16x16 tiles its 3-sigma bounding box touches,
   and pairs are sorted by (view, tile, depth), as gsplat's `isect_tiles`. A pixel therefore sees exactly the
   Gaussians of its tile, in depth order.
3. Compositing, vectorised over tiles: tiles are grouped by their pair count into chunks, each chunk becomes
   a dense (tiles, 256 pixels, Gaussians) alpha tensor, and front-to-back compositing is a cumulative sum of
   log(1 - alpha). The usual 3DGS rules (Kerbl et al. 2023, supplementary; gsplat's rasterize_to_pixels):
   alpha = min(0.99, o exp(-0.5 d^T conic d)); alpha < 1/255 or a negative exponent is skipped; a pixel
   stops before the Gaussian that would take its transmittance to <= 1e-4. The thresholds are
   non-differentiable, as in every 3DGS rasterizer.
No Python loop runs over Gaussians or pixels; the only loop is over a handful of chunks per call.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rl3dedit.render._projection import Projection

logger = logging.getLogger(__name__)

TILE_SIZE = 16
ALPHA_MAX = 0.99
ALPHA_MIN = 1.0 / 255.0
TRANSMITTANCE_MIN = 1e-4
CHUNK_ELEMENTS = 1 << 21
"""Upper bound on (tiles x pixels x Gaussians) per dense chunk: bounds the peak of one chunk's temporaries."""


@dataclass
class TileIntersections:
    """Gaussian-tile pairs sorted by (global tile, depth).

    Fields:
        flat_ids: (P,) index into the flattened (V * N) per-view Gaussian arrays, one per pair.
        tile_ids: (T,) global tile index (view * tiles_per_view + tile) of every non-empty tile.
        offsets: (T,) start of each non-empty tile's run in `flat_ids`.
        counts: (T,) number of pairs of each non-empty tile.
        tiles_x, tiles_y: tile grid size per view.
    """

    flat_ids: Tensor
    tile_ids: Tensor
    offsets: Tensor
    counts: Tensor
    tiles_x: int
    tiles_y: int


def intersect_tiles(proj: Projection, width: int, height: int) -> TileIntersections:
    """Pair every visible Gaussian with the tiles its bounding box overlaps, sorted by (view, tile, depth)."""
    num_views, num_gauss = proj.depths.shape
    tiles_x, tiles_y = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    device = proj.depths.device
    with torch.no_grad():
        view_idx, gauss_idx = proj.visible.nonzero(as_tuple=True)
        centre = proj.means2d.detach()[view_idx, gauss_idx]  # (M, 2)
        ext = proj.extents[view_idx, gauss_idx].to(centre.dtype)  # (M, 2)
        lo = torch.floor((centre - ext) / TILE_SIZE).long()
        hi = torch.ceil((centre + ext) / TILE_SIZE).long()
        x0, x1 = lo[:, 0].clamp(0, tiles_x), hi[:, 0].clamp(0, tiles_x)
        y0, y1 = lo[:, 1].clamp(0, tiles_y), hi[:, 1].clamp(0, tiles_y)
        span_x = (x1 - x0).clamp_min(0)
        n_tiles = span_x * (y1 - y0).clamp_min(0)  # (M,)
        owner = torch.repeat_interleave(torch.arange(len(n_tiles), device=device), n_tiles)  # (P,)
        # Position of each pair inside its Gaussian's bounding box of tiles, row-major.
        first = torch.cumsum(n_tiles, 0) - n_tiles
        local = torch.arange(len(owner), device=device) - first[owner]
        tx = x0[owner] + local % span_x[owner].clamp_min(1)
        ty = y0[owner] + local // span_x[owner].clamp_min(1)
        tile = view_idx[owner] * (tiles_x * tiles_y) + ty * tiles_x + tx  # (P,)
        # Sort by depth first, then stably by tile, so each tile's run is front to back.
        depth = proj.depths.detach()[view_idx[owner], gauss_idx[owner]]
        order = torch.argsort(depth, stable=True)
        order = order[torch.argsort(tile[order], stable=True)]
        flat_ids = (view_idx * num_gauss + gauss_idx)[owner[order]]
        tile_ids, counts = torch.unique_consecutive(tile[order], return_counts=True)
        offsets = torch.cumsum(counts, 0) - counts
    return TileIntersections(flat_ids, tile_ids, offsets, counts, tiles_x, tiles_y)


def _chunks(counts: Tensor, pixels: int) -> list[Tensor]:
    """Group tiles (largest count first) so each chunk's dense tensor stays under CHUNK_ELEMENTS."""
    order = torch.argsort(counts, descending=True)
    sorted_counts = counts[order].tolist()
    chunks, start = [], 0
    while start < len(sorted_counts):
        width = max(sorted_counts[start], 1)
        take = max(1, CHUNK_ELEMENTS // (pixels * width))
        chunks.append(order[start : start + take])
        start += take
    return chunks


def _composite_chunk(
    tiles: Tensor,  # (Tc,) indices into the TileIntersections arrays
    isect: TileIntersections,
    means2d: Tensor,  # (V*N, 2)
    conics: Tensor,  # (V*N, 3)
    opacities: Tensor,  # (V*N,)
    features: Tensor,  # (V*N, X)
    pixel_offsets: Tensor,  # (256, 2) pixel centres within a tile
) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing of one chunk of tiles. Returns ((Tc, 256, X) accumulation, (Tc, 256) T_final)."""
    counts = isect.counts[tiles]
    width = int(counts.max())
    slot = torch.arange(width, device=counts.device)
    valid = slot[None, :] < counts[:, None]  # (Tc, G)
    pair = (isect.offsets[tiles][:, None] + slot[None, :]).clamp_max(len(isect.flat_ids) - 1)
    gid = isect.flat_ids[pair]  # (Tc, G)

    tiles_per_view = isect.tiles_x * isect.tiles_y
    local_tile = isect.tile_ids[tiles] % tiles_per_view
    origin = torch.stack([local_tile % isect.tiles_x, local_tile // isect.tiles_x], dim=-1) * TILE_SIZE
    pix = origin[:, None, :].to(means2d.dtype) + pixel_offsets[None]  # (Tc, 256, 2)

    mean = means2d[gid]  # (Tc, G, 2)
    conic = conics[gid]  # (Tc, G, 3)
    dx = pix[:, :, None, 0] - mean[:, None, :, 0]  # (Tc, 256, G)
    dy = pix[:, :, None, 1] - mean[:, None, :, 1]
    sigma = 0.5 * (conic[:, None, :, 0] * dx * dx + conic[:, None, :, 2] * dy * dy) + conic[:, None, :, 1] * dx * dy
    alpha = (opacities[gid][:, None, :] * torch.exp(-sigma)).clamp_max(ALPHA_MAX)
    keep = valid[:, None, :] & (sigma >= 0) & (alpha >= ALPHA_MIN)
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
    with torch.no_grad():
        # A pixel stops before the first Gaussian whose inclusion would take T to <= 1e-4; T only falls, so
        # "T after this Gaussian > 1e-4" is a prefix mask.
        log_t_all = torch.cumsum(torch.log1p(-alpha), dim=-1)
        alive = log_t_all > math.log(TRANSMITTANCE_MIN)
    alpha = torch.where(alive, alpha, torch.zeros_like(alpha))
    log_one_minus = torch.log1p(-alpha)
    log_t = torch.cumsum(log_one_minus, dim=-1)  # (Tc, 256, G) log T after each Gaussian
    weights = alpha * torch.exp(log_t - log_one_minus)  # alpha_i * T_before_i
    accum = torch.bmm(weights, features[gid])  # (Tc, 256, X)
    return accum, torch.exp(log_t[..., -1])


def rasterize_torch(
    proj: Projection,
    opacities: Tensor,  # (N,)
    features: Tensor,  # (V, N, X)
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Composite per-view features front to back.

    Returns:
        accum: (V, H, W, X) sum_i w_i f_i with w_i = alpha_i T_i (no background).
        transmittance: (V, H, W, 1) T after the last composited Gaussian (1 - accumulated alpha).
    """
    num_views, num_gauss = proj.depths.shape
    x_dim = features.shape[-1]
    isect = intersect_tiles(proj, width, height)
    pixels = TILE_SIZE * TILE_SIZE
    dtype, device = features.dtype, features.device
    ys, xs = torch.meshgrid(torch.arange(TILE_SIZE), torch.arange(TILE_SIZE), indexing="ij")
    pixel_offsets = torch.stack([xs, ys], dim=-1).reshape(pixels, 2).to(device=device, dtype=dtype) + 0.5

    means2d = proj.means2d.reshape(-1, 2)
    conics = proj.conics.reshape(-1, 3)
    opac = opacities[None, :].expand(num_views, num_gauss).reshape(-1)
    feats = features.reshape(-1, x_dim)

    num_tiles = num_views * isect.tiles_x * isect.tiles_y
    accum = features.new_zeros(num_tiles, pixels, x_dim)
    trans = features.new_ones(num_tiles, pixels)
    if len(isect.tile_ids) > 0:
        parts = [
            (tiles, *_composite_chunk(tiles, isect, means2d, conics, opac, feats, pixel_offsets))
            for tiles in _chunks(isect.counts, pixels)
        ]
        tile_rows = isect.tile_ids[torch.cat([p[0] for p in parts])]
        accum = accum.index_copy(0, tile_rows, torch.cat([p[1] for p in parts]))
        trans = trans.index_copy(0, tile_rows, torch.cat([p[2] for p in parts]))
        logger.debug("rasterized %d pairs over %d tiles in %d chunks", len(isect.flat_ids), len(tile_rows), len(parts))

    return _untile(accum, num_views, isect, width, height), _untile(trans[..., None], num_views, isect, width, height)


def _untile(values: Tensor, num_views: int, isect: TileIntersections, width: int, height: int) -> Tensor:
    """(V * tiles, 256, X) tile-major values -> (V, H, W, X) images, cropping the partial last tiles."""
    x_dim = values.shape[-1]
    grid = values.reshape(num_views, isect.tiles_y, isect.tiles_x, TILE_SIZE, TILE_SIZE, x_dim)
    image = grid.permute(0, 1, 3, 2, 4, 5).reshape(
        num_views, isect.tiles_y * TILE_SIZE, isect.tiles_x * TILE_SIZE, x_dim
    )
    return image[:, :height, :width]

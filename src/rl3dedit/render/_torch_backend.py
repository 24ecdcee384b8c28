"""Our pure-PyTorch rasterizer: gsplat's `rasterization()` contract on any device, differentiable.

Design (gsplat's tile rasterizer without its CUDA kernels, https://github.com/nerfstudio-project/gsplat):
1. EWA projection of every Gaussian into every view (`_projection.py`), colours from SH (`_sh.py`).
2. Tile intersection: each visible Gaussian is paired with the 8x8 tiles its bounding box touches, and pairs
   are sorted by (view, tile, depth), as gsplat's `isect_tiles`. Boxes are gsplat's opacity-aware ones
   (`_projection.py`): they hold every pixel where the Gaussian's alpha reaches 1/255, so a pixel sees every
   Gaussian that can reach it, in depth order, whatever the tile size. gsplat uses 16x16 tiles; 8x8 halves the
   wasted (pixel, Gaussian) work on CPU for small splats (measured 1.2-2x faster, benchmarks/RESULTS.md).
3. Compositing, vectorised over tiles: tiles are grouped by their pair count into chunks, each chunk becomes
   a dense (tiles, 64 pixels, Gaussians) tensor of exponents (one batched matmul), and front-to-back
   compositing is a cumulative sum of log(1 - alpha). The usual 3DGS rules (Kerbl et al. 2023, supplementary;
   gsplat's rasterize_to_pixels): alpha = min(0.999, o exp(-0.5 d^T conic d)); alpha < 1/255 is skipped; a pixel
   stops before the Gaussian that would take its transmittance to <= 1e-4. The thresholds are
   non-differentiable, as in every 3DGS rasterizer. (gsplat's extra "negative exponent" skip cannot trigger:
   conics are positive definite by construction.)
4. Backward: autograd everywhere except compositing, whose hand-written backward (`_Composite`) keeps only the
   final alphas, so one (tiles x pixels x Gaussians) tensor per chunk is held between forward and backward.
Shapes: Tc tiles in a chunk, S = TILE_SIZE^2 pixels per tile, G Gaussians per tile (padded), X channels.
No Python loop runs over Gaussians or pixels; the only loop is over a handful of chunks per call.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rl3dedit.render._projection import ALPHA_MIN, Projection

logger = logging.getLogger(__name__)

TILE_SIZE = 8
ALPHA_MAX = 0.999
"""gsplat's clamp (INRIA's rasterizer uses 0.99): the same value keeps CPU and GPU renders of one scene equal."""
TRANSMITTANCE_MIN = 1e-4
_POWER_FLOOR = math.log(ALPHA_MIN) - 1.0
_LOG_T_MIN = math.log(TRANSMITTANCE_MIN)
CHUNK_ELEMENTS = 1 << 21
"""Upper bound on (tiles x pixels x Gaussians) per dense chunk: bounds the peak of one chunk's temporaries."""
CHUNK_FILL = 0.7
"""Tiles share a chunk only while their pair count is at least this fraction of the chunk's largest."""


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
    """Group tiles by pair count (largest first) into chunks that each pad to their largest count.

    A chunk ends when the next tile has fewer than CHUNK_FILL of the chunk's first count (so padding wastes
    at most 1 / CHUNK_FILL) or when its dense tensor would exceed CHUNK_ELEMENTS.
    """
    order = torch.argsort(counts, descending=True)
    negated = (-counts[order]).tolist()  # ascending, for bisect
    chunks, start = [], 0
    while start < len(negated):
        first = max(-negated[start], 1)
        take = max(1, CHUNK_ELEMENTS // (pixels * first))
        stop = min(start + take, bisect.bisect_right(negated, -CHUNK_FILL * first, lo=start))
        stop = max(stop, start + 1)
        chunks.append(order[start:stop])
        start = stop
    return chunks


def _pixel_monomials(dtype: torch.dtype, device: torch.device) -> Tensor:
    """(S, 6) monomials (u^2, uv, v^2, u, v, 1) of the pixel centres relative to the tile centre."""
    coords = torch.arange(TILE_SIZE, dtype=dtype, device=device) + 0.5 - TILE_SIZE / 2
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    return torch.stack([u * u, u * v, v * v, u, v, torch.ones_like(u)], dim=-1)


def _composite_chunk(
    tiles: Tensor,  # (Tc,) indices into the TileIntersections arrays
    isect: TileIntersections,
    means2d: Tensor,  # (V*N, 2)
    conics: Tensor,  # (V*N, 3)
    log_opacities: Tensor,  # (V*N,)
    features: Tensor,  # (V*N, X)
    monomials: Tensor,  # (S, 6) from _pixel_monomials
) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing of one chunk of tiles. Returns ((Tc, S, X) accumulation, (Tc, S) log T_final).

    The Gaussian exponent log(o) - 0.5 d^T conic d is a quadratic polynomial in the pixel position, so it is one
    batched matmul of fixed pixel monomials with six per-(tile, Gaussian) coefficients, which avoids a dozen
    elementwise (tiles x pixels x Gaussians) temporaries.
    """
    counts = isect.counts[tiles]
    width = int(counts.max())
    slot = torch.arange(width, device=counts.device)
    valid = slot[None, :] < counts[:, None]  # (Tc, G)
    pair = (isect.offsets[tiles][:, None] + slot[None, :]).clamp_max(len(isect.flat_ids) - 1)
    gid = isect.flat_ids[pair]  # (Tc, G)

    local_tile = isect.tile_ids[tiles] % (isect.tiles_x * isect.tiles_y)
    tile_xy = torch.stack([local_tile % isect.tiles_x, local_tile // isect.tiles_x], dim=-1)
    centre = (tile_xy * TILE_SIZE + TILE_SIZE / 2).to(means2d.dtype)  # (Tc, 2)

    mx, my = (means2d[gid] - centre[:, None, :]).unbind(-1)  # (Tc, G) each, relative to the tile centre
    a, b, c = conics[gid].unbind(-1)
    constant = log_opacities[gid] - (0.5 * a * mx * mx + b * mx * my + 0.5 * c * my * my)
    # Padded slots get an exponent below the skip threshold everywhere in the tile, so they never composite.
    constant = torch.where(valid, constant, torch.full_like(constant, -1e4))
    coeffs = torch.stack([-0.5 * a, -b, -0.5 * c, a * mx + b * my, c * my + b * mx, constant], dim=1)  # (Tc, 6, G)
    power = torch.matmul(monomials, coeffs)  # (Tc, S, G) log(o) - 0.5 d^T conic d
    return _Composite.apply(power, features[gid])


def _alphas(power: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """3DGS alpha rules on exponents (Tc, S, G) sorted front to back (in place on fresh temporaries).

    Returns (alpha, log(1 - alpha), exclusive transmittance T_i), each (Tc, S, G); alpha is 0 for skipped and
    cut-off Gaussians, so d alpha / d power is alpha itself except where the 0.999 clamp decided the value.
    """
    # Exponents far below log(1/255) only ever give skipped alphas; flooring them first matters for speed, as
    # CPU exp takes a ~100x slower path for results that underflow (measured: 0.3 ms vs 39 ms per 1.2M values).
    alpha = torch.exp(power.clamp_min(_POWER_FLOOR)).clamp_max_(ALPHA_MAX)
    torch.nn.functional.threshold_(alpha, ALPHA_MIN, 0.0)  # skip alpha <= 1/255 (gsplat: < 1/255; measure 0)
    log_one_minus = torch.neg(alpha).log1p_()
    log_t = torch.cumsum(log_one_minus, dim=-1)  # log T after each Gaussian, non-increasing along G
    # A pixel stops before the first Gaussian whose inclusion would take T to <= 1e-4; T only falls, so the
    # surviving Gaussians form a prefix and their exclusive transmittance is unaffected by the ones cut off.
    if bool((log_t[..., -1] <= _LOG_T_MIN).any()):
        stopped = log_t <= _LOG_T_MIN
        alpha.masked_fill_(stopped, 0.0)
        log_one_minus.masked_fill_(stopped, 0.0)
    return alpha, log_one_minus, log_t.sub_(log_one_minus).exp_()


class _Composite(torch.autograd.Function):
    """Front-to-back compositing with a hand-written backward that keeps only the final alphas.

    Autograd through the same expressions keeps about a dozen (tiles x pixels x Gaussians) tensors alive until
    backward; this keeps one, the alphas after every rule (0 where skipped or cut off), from which backward
    recomputes the transmittances. Gradients (3DGS, Kerbl et al. 2023; gsplat rasterize_to_pixels_bwd), with
    w_i = alpha_i T_i and g the output gradient at a pixel:
        dL/df_i = sum_pixels w_i g
        dL/dalpha_i = T_i (g . f_i) - (sum_{j>i} w_j (g . f_j) + dL/dlogT_final) / (1 - alpha_i)
        dalpha_i/dpower_i = alpha_i (alpha = exp(power)), 0 where the 0.999 clamp decided the value.
    """

    @staticmethod
    def forward(ctx, power: Tensor, features: Tensor) -> tuple[Tensor, Tensor]:  # (Tc, S, G), (Tc, G, X)
        alpha, log_one_minus, trans = _alphas(power)
        ctx.save_for_backward(alpha, features)
        return torch.bmm(trans.mul_(alpha), features), log_one_minus.sum(dim=-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_accum: Tensor, grad_log_t: Tensor) -> tuple[Tensor, Tensor]:
        alpha, features = ctx.saved_tensors
        log_one_minus = torch.log1p(-alpha)
        trans = torch.cumsum(log_one_minus, dim=-1).sub_(log_one_minus).exp_()  # exclusive T_i
        weights = alpha * trans
        grad_features = torch.bmm(weights.transpose(1, 2), grad_accum)  # (Tc, G, X)
        g_dot_f = torch.bmm(grad_accum, features.transpose(1, 2))  # (Tc, S, G)
        weighted = weights.mul_(g_dot_f)
        behind = torch.cumsum(weighted, dim=-1).neg_().add_(weighted.sum(dim=-1, keepdim=True))  # sum over j > i
        behind.add_(grad_log_t[..., None]).div_(log_one_minus.exp_())  # / (1 - alpha_i)
        grad_power = trans.mul_(g_dot_f).sub_(behind).mul_(alpha)
        return grad_power.masked_fill_(alpha >= ALPHA_MAX, 0.0), grad_features


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
        log_transmittance: (V, H, W, 1) log T after the last composited Gaussian; callers form the accumulated
            alpha as -expm1(log T), which keeps full precision for faint pixels (1 - exp(.) would not).
    """
    num_views, num_gauss = proj.depths.shape
    x_dim = features.shape[-1]
    isect = intersect_tiles(proj, width, height)
    pixels = TILE_SIZE * TILE_SIZE
    dtype, device = features.dtype, features.device
    monomials = _pixel_monomials(dtype, device)

    means2d = proj.means2d.reshape(-1, 2)
    conics = proj.conics.reshape(-1, 3)
    # Clamped so a zero opacity gives alpha 0 rather than log(0); its gradient is zero there, as gsplat's.
    log_opac = opacities.clamp_min(1e-30).log()[None, :].expand(num_views, num_gauss).reshape(-1)
    feats = features.reshape(-1, x_dim)

    num_tiles = num_views * isect.tiles_x * isect.tiles_y
    accum = features.new_zeros(num_tiles, pixels, x_dim)
    log_trans = features.new_zeros(num_tiles, pixels)
    if len(isect.tile_ids) > 0:
        parts = [
            (tiles, *_composite_chunk(tiles, isect, means2d, conics, log_opac, feats, monomials))
            for tiles in _chunks(isect.counts, pixels)
        ]
        tile_rows = isect.tile_ids[torch.cat([p[0] for p in parts])]
        accum = accum.index_copy(0, tile_rows, torch.cat([p[1] for p in parts]))
        log_trans = log_trans.index_copy(0, tile_rows, torch.cat([p[2] for p in parts]))
        logger.debug("rasterized %d pairs over %d tiles in %d chunks", len(isect.flat_ids), len(tile_rows), len(parts))

    log_trans = _untile(log_trans[..., None], num_views, isect, width, height)
    return _untile(accum, num_views, isect, width, height), log_trans


def _untile(values: Tensor, num_views: int, isect: TileIntersections, width: int, height: int) -> Tensor:
    """(V * tiles, S, X) tile-major values -> (V, H, W, X) images, cropping the partial last tiles."""
    x_dim = values.shape[-1]
    grid = values.reshape(num_views, isect.tiles_y, isect.tiles_x, TILE_SIZE, TILE_SIZE, x_dim)
    image = grid.permute(0, 1, 3, 2, 4, 5).reshape(
        num_views, isect.tiles_y * TILE_SIZE, isect.tiles_x * TILE_SIZE, x_dim
    )
    return image[:, :height, :width]

"""2D rotary position embedding of the aggregator (docs/references.md §4).

Each attention head of width Dh is split in two halves: the first half is rotated by the token's row, the second
by its column. Within a half of width d, "rotate-half" pairs channel i with i + d/2 and rotates them by
pos * base^(-2i/d), i = 0..d/2-1. Patch tokens sit at (row + 1, col + 1); special tokens at (0, 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["patch_positions", "apply_rope_2d"]


def patch_positions(num_frames: int, grid_h: int, grid_w: int, num_special: int, device: torch.device) -> Tensor:
    """Integer (row, col) positions of one frame's tokens, repeated per frame.

    Returns (num_frames, num_special + grid_h * grid_w, 2) int64: (0, 0) for the `num_special` camera/register
    tokens, then (row + 1, col + 1) for patches in raster order (row-major).
    """
    rows = torch.arange(1, grid_h + 1, device=device)
    cols = torch.arange(1, grid_w + 1, device=device)
    grid = torch.cartesian_prod(rows, cols)  # (grid_h * grid_w, 2)
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    pos = torch.cat([special, grid], dim=0)
    return pos.unsqueeze(0).expand(num_frames, -1, -1)


def _cos_sin(half_dim: int, max_pos: int, base: float, device: torch.device,
             dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Tables (max_pos, half_dim) for one axis.

    The angles are always formed in float32 and only then cast to `dtype` before cos/sin: upstream does the same,
    so a float64 model keeps this float32 island (fixture README, "float64 check").
    """
    exponents = torch.arange(0, half_dim, 2, device=device).float() / half_dim
    inv_freq = 1.0 / (base**exponents)
    angles = torch.outer(torch.arange(max_pos, device=device, dtype=torch.float32), inv_freq).to(dtype)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rope_2d(x: Tensor, positions: Tensor, base: float) -> Tensor:
    """Rotate queries or keys by their 2D positions.

    Args:
        x: (B, heads, N, Dh) queries or keys, Dh divisible by 4.
        positions: (B, N, 2) int64 (row, col).
        base: frequency base (100 in VGGT).
    Returns:
        (B, heads, N, Dh), same dtype as `x`.
    """
    half = x.shape[-1] // 2
    cos, sin = _cos_sin(half, int(positions.max()) + 1, base, x.device, x.dtype)
    out = []
    for axis, part in enumerate(x.chunk(2, dim=-1)):
        idx = positions[..., axis]
        c = cos[idx].unsqueeze(1)  # (B, 1, N, half)
        s = sin[idx].unsqueeze(1)
        out.append(part * c + _rotate_half(part) * s)
    return torch.cat(out, dim=-1)

"""Multi-head self-attention with optional qk-norm and 2D RoPE (docs/references.md §4).

Order inside a head: qkv projection -> LayerNorm on q and k (qk-norm, eps 1e-5, affine) -> RoPE -> scaled dot
product with scale 1/sqrt(Dh) -> output projection. DINOv2 and the camera-head trunk use the same module with
qk-norm and RoPE off.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from rl3dedit.geometry.vggt.layers.rope import apply_rope_2d

__all__ = ["Attention"]


class Attention(nn.Module):
    """Self-attention over (B, N, D) tokens; keys `qkv`, `proj`, and `q_norm`/`k_norm` when qk-norm is on."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
        rope_freq: float | None = None,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope_freq = rope_freq

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """x (B, N, D); pos (B, N, 2) int64 RoPE positions or None -> (B, N, D)."""
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, Dh)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope_freq is not None and pos is not None:
            q = apply_rope_2d(q, pos, self.rope_freq)
            k = apply_rope_2d(k, pos, self.rope_freq)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))

"""Pre-norm transformer block shared by DINOv2, the aggregator and the camera trunk.

x = x + ls1(attn(norm1(x))); x = x + ls2(mlp(norm2(x))). LayerScale multiplies by an fp32 gamma out of place,
so under bf16 autocast the residual stream stays fp32 (docs/references.md §4).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rl3dedit.geometry.vggt.layers.attention import Attention
from rl3dedit.geometry.vggt.layers.mlp import Mlp

__all__ = ["LayerScale", "Block"]


class LayerScale(nn.Module):
    """Per-channel scale `gamma` (D,)."""

    def __init__(self, dim: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Keys: norm1, attn.*, ls1.gamma, norm2, mlp.fc1/fc2, ls2.gamma."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        init_values: float | None = None,
        qk_norm: bool = False,
        rope_freq: float | None = None,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        # qk-norm eps stays 1e-5 whatever the block LayerNorm eps is (docs/references.md §4).
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias, qk_norm=qk_norm,
                              rope_freq=rope_freq)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """x (B, N, D), pos (B, N, 2) or None -> (B, N, D)."""
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))

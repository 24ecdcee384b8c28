"""DINOv2 ViT used as VGGT's patch embedding (checkpoint keys `aggregator.patch_embed.*`).

Keys: cls_token (1, 1, D), pos_embed (1, 1 + G*G, D), register_tokens (1, R, D), mask_token (1, D) (unused),
patch_embed.proj (D, 3, p, p), blocks.N.* (no chunk level), norm. Blocks use LayerNorm eps 1e-6, exact GELU,
LayerScale, no qk-norm and no RoPE. Only the final-norm patch tokens are returned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rl3dedit.geometry.vggt.config import DinoConfig
from rl3dedit.geometry.vggt.layers.block import Block

__all__ = ["PatchEmbed", "DinoViT"]


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches: (B, 3, H, W) -> (B, H/p * W/p, D), raster order."""

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoViT(nn.Module):
    """DINOv2 ViT with registers; `forward` returns the final-norm patch tokens (x_norm_patchtokens)."""

    def __init__(self, cfg: DinoConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.embed_dim
        grid = cfg.img_size // cfg.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, D))
        self.register_tokens = (nn.Parameter(torch.zeros(1, cfg.num_register_tokens, D))
                                if cfg.num_register_tokens else None)
        self.mask_token = nn.Parameter(torch.zeros(1, D))
        self.patch_embed = PatchEmbed(cfg.patch_size, D)
        self.blocks = nn.ModuleList(
            Block(D, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, proj_bias=cfg.proj_bias,
                  ffn_bias=cfg.ffn_bias, init_values=cfg.init_values, norm_eps=cfg.layer_norm_eps)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)

    def interpolate_pos_embed(self, grid_h: int, grid_w: int, dtype: torch.dtype) -> Tensor:
        """Position table for a (grid_h, grid_w) patch grid, CLS row first: (1, 1 + grid_h * grid_w, D).

        Bicubic resize of the square G x G table. With `interpolate_offset == 0` (VGGT) the output size is given
        explicitly, with antialiasing as configured; the resize always runs in float32 (upstream `.float()`).
        The table is returned unchanged only when the grid is square and already G x G.
        """
        table = self.pos_embed
        num = table.shape[1] - 1
        side = int(math.sqrt(num))
        if side * side != num:
            raise ValueError(f"pos_embed has {num} patch rows, which is not a square grid")
        if grid_h * grid_w == num and grid_h == grid_w:
            return table
        table = table.float()
        patch = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if self.cfg.interpolate_offset:
            scale = ((grid_h + self.cfg.interpolate_offset) / side, (grid_w + self.cfg.interpolate_offset) / side)
            patch = F.interpolate(patch, scale_factor=scale, mode="bicubic", antialias=self.cfg.interpolate_antialias)
        else:
            patch = F.interpolate(patch, size=(grid_h, grid_w), mode="bicubic",
                                  antialias=self.cfg.interpolate_antialias)
        patch = patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
        return torch.cat([table[:, :1], patch], dim=1).to(dtype)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, H, W), ImageNet-normalised, H and W multiples of the patch size -> (B, P, D)."""
        B, _, H, W = images.shape
        p = self.cfg.patch_size
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = x + self.interpolate_pos_embed(H // p, W // p, x.dtype)
        if self.register_tokens is not None:
            x = torch.cat([x[:, :1], self.register_tokens.expand(B, -1, -1), x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 1 + self.cfg.num_register_tokens:]

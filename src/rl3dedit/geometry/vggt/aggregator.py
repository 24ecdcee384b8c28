"""VGGT aggregator: DINOv2 patch tokens + alternating frame / global attention (docs/references.md §4).

Per frame the sequence is [camera token (1), register tokens (R), patch tokens (P)]; frame 0 receives index 0
of `camera_token` / `register_token`, every other frame index 1, which makes frame 0 the reference (world) frame.
Each step runs `aa_block_size` frame blocks on (B*S, T, C), then as many global blocks on (B, S*T, C), and
records cat([frame_out, global_out], -1) of shape (B, S, T, 2C).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from rl3dedit.geometry.vggt.config import AggregatorConfig
from rl3dedit.geometry.vggt.layers import Block, DinoViT, patch_positions

__all__ = ["Aggregator", "AggregatorOutput", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AggregatorOutput:
    """tokens: one entry per frame/global block pair (`depth` entries), each (B, S, T, 2C), or None where the
    caller did not ask to keep it; patch_start_idx = 1 + R (index of the first patch token)."""

    tokens: list[Tensor | None]
    patch_start_idx: int


def _special_tokens(param: Tensor, B: int, S: int) -> Tensor:
    """(1, 2, n, C) learned tokens -> (B*S, n, C): index 0 for frame 0, index 1 for frames 1..S-1."""
    first = param[:, :1].expand(B, 1, *param.shape[2:])
    rest = param[:, 1:].expand(B, S - 1, *param.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(B * S, *param.shape[2:])


class Aggregator(nn.Module):
    """Keys: camera_token (1, 2, 1, C), register_token (1, 2, R, C), patch_embed.*, frame_blocks.i.*,
    global_blocks.i.* (no parameters for RoPE or the ImageNet normalisation)."""

    def __init__(self, cfg: AggregatorConfig):
        super().__init__()
        if cfg.patch_embed.embed_dim != cfg.embed_dim:
            raise ValueError(f"patch_embed.embed_dim {cfg.patch_embed.embed_dim} must equal aggregator.embed_dim "
                             f"{cfg.embed_dim}")
        if cfg.patch_embed.patch_size != cfg.patch_size:
            raise ValueError(f"patch_embed.patch_size {cfg.patch_embed.patch_size} != patch_size {cfg.patch_size}")
        if cfg.depth % cfg.aa_block_size:
            raise ValueError(f"aggregator depth {cfg.depth} is not divisible by aa_block_size {cfg.aa_block_size}")
        unknown = set(cfg.aa_order) - {"frame", "global"}
        if unknown:
            raise ValueError(f"aa_order entries must be 'frame' or 'global', found {sorted(unknown)}")
        self.cfg = cfg
        C = cfg.embed_dim
        self.patch_embed = DinoViT(cfg.patch_embed)
        rope = cfg.rope_freq if cfg.rope_freq > 0 else None
        self.frame_blocks = nn.ModuleList(self._block(rope) for _ in range(cfg.depth))
        self.global_blocks = nn.ModuleList(self._block(rope) for _ in range(cfg.depth))
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, C))
        self.register_token = nn.Parameter(torch.zeros(1, 2, cfg.num_register_tokens, C))

    def _block(self, rope: float | None) -> Block:
        c = self.cfg
        return Block(c.embed_dim, c.num_heads, mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias, proj_bias=c.proj_bias,
                     ffn_bias=c.ffn_bias, init_values=c.init_values, qk_norm=c.qk_norm, rope_freq=rope,
                     norm_eps=c.block_layer_norm_eps)

    def normalize(self, images: Tensor) -> Tensor:
        """ImageNet mean/std, built in float32 then cast (as upstream's fp32 buffers under `model.double()`)."""
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=images.device).view(1, 1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=images.device).view(1, 1, 3, 1, 1)
        return (images - mean.to(images.dtype)) / std.to(images.dtype)

    def forward(self, images: Tensor, keep: Collection[int] | None = None) -> AggregatorOutput:
        """images (B, S, 3, H, W) in [0, 1], H and W multiples of the patch size -> AggregatorOutput.

        `keep`: indices of the outputs to keep (None = all, as upstream). Dropping the ones no head reads saves
        (depth - len(keep)) x B*S*T*2C floats, e.g. 1.5 GB for 9 frames at 518x392 in VGGT-1B.
        """
        B, S, _, H, W = images.shape
        p = self.cfg.patch_size
        patches = self.patch_embed(self.normalize(images).reshape(B * S, 3, H, W))  # (B*S, P, C)
        tokens = torch.cat([
            _special_tokens(self.camera_token, B, S).to(patches.dtype),
            _special_tokens(self.register_token, B, S).to(patches.dtype),
            patches,
        ], dim=1)  # (B*S, T, C)
        T, C = tokens.shape[1], tokens.shape[2]
        pos = patch_positions(B * S, H // p, W // p, self.cfg.patch_start_idx, images.device)  # (B*S, T, 2)
        frame_idx = global_idx = 0
        outputs: list[Tensor | None] = []
        for _ in range(self.cfg.depth // self.cfg.aa_block_size):
            frame_out: list[Tensor] = []
            global_out: list[Tensor] = []
            for kind in self.cfg.aa_order:
                if kind == "frame":
                    tokens = tokens.reshape(B * S, T, C)
                    frame_pos = pos.reshape(B * S, T, 2)
                    for _ in range(self.cfg.aa_block_size):
                        tokens = self._run(self.frame_blocks[frame_idx], tokens, frame_pos)
                        frame_idx += 1
                        frame_out.append(tokens.reshape(B, S, T, C))
                else:
                    tokens = tokens.reshape(B, S * T, C)
                    global_pos = pos.reshape(B, S * T, 2)
                    for _ in range(self.cfg.aa_block_size):
                        tokens = self._run(self.global_blocks[global_idx], tokens, global_pos)
                        global_idx += 1
                        global_out.append(tokens.reshape(B, S, T, C))
            for f, g in zip(frame_out, global_out, strict=True):
                outputs.append(torch.cat([f, g], dim=-1) if keep is None or len(outputs) in keep else None)
        return AggregatorOutput(tokens=outputs, patch_start_idx=self.cfg.patch_start_idx)

    def _run(self, block: Block, x: Tensor, pos: Tensor) -> Tensor:
        # Training backprops through 2 x depth blocks over S*T tokens; recompute activations to save memory.
        if self.training and torch.is_grad_enabled():
            return checkpoint(block, x, pos, use_reentrant=False)
        return block(x, pos)

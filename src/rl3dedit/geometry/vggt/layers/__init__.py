"""Generic VGGT building blocks: attention with qk-norm and 2D RoPE, pre-norm blocks, MLP, DINOv2 ViT."""

from rl3dedit.geometry.vggt.layers.attention import Attention
from rl3dedit.geometry.vggt.layers.block import Block, LayerScale
from rl3dedit.geometry.vggt.layers.dinov2 import DinoViT, PatchEmbed
from rl3dedit.geometry.vggt.layers.mlp import Mlp
from rl3dedit.geometry.vggt.layers.rope import apply_rope_2d, patch_positions

__all__ = ["Attention", "Block", "LayerScale", "DinoViT", "PatchEmbed", "Mlp", "apply_rope_2d", "patch_positions"]

"""Track head modules (upstream `vggt/heads/track_head.py`), built so that the `track_head.*` checkpoint keys load.

The feature extractor (a feature-only DPT at half resolution) runs; the CoTracker-style iterative tracker
(`tracker.*`) only holds its parameters (its layer-norm eps and forward are not reproduced): querying tracks raises
NotImplementedError. The reward model does not use tracks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rl3dedit.geometry.vggt.config import DPTHeadConfig, TrackHeadConfig
from rl3dedit.geometry.vggt.heads.dpt import DPTHead
from rl3dedit.geometry.vggt.layers import Mlp

__all__ = ["TrackHead"]


class _AttnBlock(nn.Module):
    """Keys: norm1, norm2, attn (nn.MultiheadAttention naming), mlp.fc1/fc2."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))


class _CrossAttnBlock(nn.Module):
    """Keys: norm1, norm_context, norm2, cross_attn (nn.MultiheadAttention naming), mlp.fc1/fc2."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))


class _UpdateFormer(nn.Module):
    """Time/space transformer over tracks and virtual tracks (`virual_tracks`: the misspelling is upstream's key)."""

    def __init__(self, cfg: TrackHeadConfig, input_dim: int, output_dim: int):
        super().__init__()
        hid = cfg.hidden_size
        self.virual_tracks = nn.Parameter(torch.zeros(1, cfg.num_virtual_tracks, 1, hid))
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hid)
        self.output_norm = nn.LayerNorm(hid)
        self.flow_head = nn.Linear(hid, output_dim)

        def blocks(klass: type) -> nn.ModuleList:
            return nn.ModuleList(klass(hid, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))

        self.time_blocks = blocks(_AttnBlock)
        self.space_virtual_blocks = blocks(_AttnBlock)
        self.space_point2virtual_blocks = blocks(_CrossAttnBlock)
        self.space_virtual2point_blocks = blocks(_CrossAttnBlock)


class _Tracker(nn.Module):
    """Parameter layout of the iterative track predictor (corr MLP, update transformer, feature updaters)."""

    def __init__(self, cfg: TrackHeadConfig):
        super().__init__()
        latent = cfg.features
        transformer_dim = 3 * latent + 4
        corr_dim = cfg.corr_levels * (2 * cfg.corr_radius + 1) ** 2
        self.query_ref_token = nn.Parameter(torch.zeros(1, 2, transformer_dim))
        self.corr_mlp = Mlp(corr_dim, cfg.hidden_size, latent)
        self.updateformer = _UpdateFormer(cfg, transformer_dim, latent + 2)
        self.fmap_norm = nn.LayerNorm(latent)
        self.ffeat_norm = nn.GroupNorm(1, latent)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent, latent), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent, 1))


class TrackHead(nn.Module):
    """Keys: feature_extractor.* (feature-only DPT, no output_conv2), tracker.*."""

    def __init__(self, cfg: TrackHeadConfig, dim_in: int, patch_size: int):
        super().__init__()
        self.cfg = cfg
        dpt = DPTHeadConfig(dim_in=dim_in, patch_size=patch_size, features=cfg.features, out_channels=cfg.out_channels,
                            intermediate_layer_idx=cfg.intermediate_layer_idx, pos_embed=False, feature_only=True,
                            down_ratio=2)
        self.feature_extractor = DPTHead(dpt)
        self.tracker = _Tracker(cfg)

    def features(self, tokens: Sequence[Tensor | None], image_hw: tuple[int, int], patch_start_idx: int,
                 frames_chunk_size: int | None = 8) -> Tensor:
        """Tracking features (B, S, features, H/2, W/2)."""
        features = self.feature_extractor(tokens, image_hw, patch_start_idx, frames_chunk_size)
        return features  # type: ignore[return-value]

    def forward(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError(
            "VGGT point tracking (track_head.tracker forward) is not implemented in rl3dedit; the track head's "
            "weights load and `TrackHead.features` works. Query points are not needed for the VGGT rewards."
        )

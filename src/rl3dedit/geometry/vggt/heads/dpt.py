"""DPT dense-prediction head for depth and world points (upstream `vggt/heads/dpt_head.py`).

Four aggregator outputs (`intermediate_layer_idx`) -> shared LayerNorm on patch tokens -> 1x1 projections ->
UV sin/cos embedding x 0.1 -> resize to 4x, 2x, 1x, 1/2x of the patch grid -> RefineNet fusion (bilinear,
align_corners=True) -> `output_conv1` -> bilinear resize to (H, W) / down_ratio -> UV embedding again ->
`output_conv2` -> activations (last channel = confidence).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rl3dedit.geometry.vggt.config import DPTHeadConfig

__all__ = ["DPTHead", "uv_embedding"]

UV_OMEGA0 = 100.0
UV_RATIO = 0.1
OUTPUT_HIDDEN = 32


def _sincos(dim: int, pos: Tensor) -> Tensor:
    """(M,) positions -> (M, dim) [sin | cos] with frequencies omega0^(-2i/dim), computed in float64."""
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    angles = torch.outer(pos.to(torch.float64), 1.0 / UV_OMEGA0**omega)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def uv_embedding(height: int, width: int, channels: int, aspect_ratio: float, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
    """UV position embedding (channels, height, width), already scaled by 0.1.

    The grid spans +-aspect/diag in x and +-1/diag in y (diag = sqrt(aspect^2 + 1), aspect = W/H of the image),
    at pixel centres. The first channels/2 channels embed u, the rest v, each [sin | cos]. The grid is built in
    `dtype`, the sin/cos in float64, and the table is returned in float32 (upstream's `.float()` island).
    """
    diag = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    ys = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype,
                        device=device)
    uu = xs.view(1, width).expand(height, width).reshape(-1)
    vv = ys.view(height, 1).expand(height, width).reshape(-1)
    emb = torch.cat([_sincos(channels // 2, uu), _sincos(channels // 2, vv)], dim=-1).float()
    return (emb * UV_RATIO).view(height, width, channels).permute(2, 0, 1)


def _interp(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class ResidualConvUnit(nn.Module):
    """relu -> conv1 -> relu -> conv2, plus a skip that adds relu(x).

    Upstream's ReLU is in-place, so its skip connection sees the rectified input (docs/references.md §4).
    """

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FeatureFusionBlock(nn.Module):
    """RefineNet step: (x + rcu1(skip)) -> rcu2 -> bilinear resize (to `size`, else x2) -> 1x1 `out_conv`."""

    def __init__(self, features: int, has_residual: bool = True):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = ResidualConvUnit(features) if has_residual else None
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if self.resConfUnit1 is not None and skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = _interp(x, size or (x.shape[-2] * 2, x.shape[-1] * 2))
        return self.out_conv(x)


def _activate(x: Tensor, kind: str) -> Tensor:
    if kind == "exp":
        return torch.exp(x)
    if kind == "inv_log":
        return torch.sign(x) * torch.expm1(x.abs())
    if kind == "linear":
        return x
    raise ValueError(f"unknown DPT activation {kind!r}")


def _activate_conf(x: Tensor, kind: str) -> Tensor:
    if kind == "expp1":
        return 1 + x.exp()
    if kind == "expp0":
        return x.exp()
    if kind == "sigmoid":
        return torch.sigmoid(x)
    raise ValueError(f"unknown DPT confidence activation {kind!r}")


class DPTHead(nn.Module):
    """Keys: norm, projects.k, resize_layers.{0,1,3}, scratch.layer{1..4}_rn, scratch.refinenet{1..4},
    scratch.output_conv1, scratch.output_conv2.{0,2} (absent when `feature_only`)."""

    def __init__(self, cfg: DPTHeadConfig):
        super().__init__()
        self.cfg = cfg
        oc, F_ = cfg.out_channels, cfg.features
        self.norm = nn.LayerNorm(cfg.dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(cfg.dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),
        ])
        self.scratch = nn.Module()
        for k, c in enumerate(oc, start=1):
            setattr(self.scratch, f"layer{k}_rn", nn.Conv2d(c, F_, 3, padding=1, bias=False))
        for k in (1, 2, 3):
            setattr(self.scratch, f"refinenet{k}", FeatureFusionBlock(F_))
        self.scratch.refinenet4 = FeatureFusionBlock(F_, has_residual=False)
        if cfg.feature_only:
            self.scratch.output_conv1 = nn.Conv2d(F_, F_, 3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(F_, F_ // 2, 3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(F_ // 2, OUTPUT_HIDDEN, 3, padding=1), nn.ReLU(), nn.Conv2d(OUTPUT_HIDDEN, cfg.output_dim, 1))

    def forward(self, tokens: Sequence[Tensor | None], image_hw: tuple[int, int], patch_start_idx: int,
                frames_chunk_size: int | None = 8) -> tuple[Tensor, Tensor] | Tensor:
        """Dense predictions for every frame, `frames_chunk_size` frames at a time (None = all at once).

        Args:
            tokens: aggregator outputs, each (B, S, T, dim_in).
            image_hw: (H, W) of the input images (multiples of the patch size).
            patch_start_idx: index of the first patch token.
        Returns:
            (preds (B, S, H, W, output_dim - 1), conf (B, S, H, W)), or features (B, S, F, H/r, W/r) when
            `feature_only`. Chunking does not change the result (each frame is processed independently).
        """
        S = self._layer(tokens, 0).shape[1]
        if frames_chunk_size is not None and frames_chunk_size <= 0:
            raise ValueError(f"frames_chunk_size must be positive or None, got {frames_chunk_size}")
        step = S if frames_chunk_size is None else frames_chunk_size
        parts = [self._forward_frames(tokens, image_hw, patch_start_idx, start, min(start + step, S))
                 for start in range(0, S, step)]
        if self.cfg.feature_only:
            return torch.cat(parts, dim=1)
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def _forward_frames(self, tokens: Sequence[Tensor | None], image_hw: tuple[int, int], patch_start_idx: int,
                        start: int, end: int) -> tuple[Tensor, Tensor] | Tensor:
        H, W = image_hw
        p = self.cfg.patch_size
        gh, gw = H // p, W // p
        B = self._layer(tokens, 0).shape[0]
        S = end - start
        feats = []
        for k in range(len(self.cfg.intermediate_layer_idx)):
            x = self._layer(tokens, k)[:, start:end, patch_start_idx:]  # (B, S, P, C)
            x = self.norm(x.reshape(B * S, gh * gw, -1))
            x = x.permute(0, 2, 1).reshape(B * S, -1, gh, gw)
            x = self.projects[k](x)
            if self.cfg.pos_embed:
                x = x + uv_embedding(gh, gw, x.shape[1], W / H, x.dtype, x.device)
            feats.append(self.resize_layers[k](x))
        out = self._fuse(feats)
        out = _interp(out, (int(gh * p / self.cfg.down_ratio), int(gw * p / self.cfg.down_ratio)))
        if self.cfg.pos_embed:
            out = out + uv_embedding(out.shape[-2], out.shape[-1], out.shape[1], W / H, out.dtype, out.device)
        if self.cfg.feature_only:
            return out.reshape(B, S, *out.shape[1:])
        out = self.scratch.output_conv2(out).permute(0, 2, 3, 1)  # (B*S, H, W, output_dim)
        preds = _activate(out[..., :-1], self.cfg.activation)
        conf = _activate_conf(out[..., -1], self.cfg.conf_activation)
        return preds.reshape(B, S, *preds.shape[1:]), conf.reshape(B, S, *conf.shape[1:])

    def _layer(self, tokens: Sequence[Tensor | None], k: int) -> Tensor:
        out = tokens[self.cfg.intermediate_layer_idx[k]]
        if out is None:
            raise ValueError(f"aggregator output {self.cfg.intermediate_layer_idx[k]} was not kept but the DPT head "
                             "reads it")
        return out

    def _fuse(self, feats: list[Tensor]) -> Tensor:
        """Four resized feature maps (fine to coarse) -> fused map at the finest resolution after output_conv1."""
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{k}_rn")(f) for k, f in enumerate(feats, start=1))
        out = s.refinenet4(l4, size=tuple(l3.shape[-2:]))
        out = s.refinenet3(out, l3, size=tuple(l2.shape[-2:]))
        out = s.refinenet2(out, l2, size=tuple(l1.shape[-2:]))
        out = s.refinenet1(out, l1)
        return s.output_conv1(out)

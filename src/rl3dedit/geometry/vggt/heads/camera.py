"""Iterative camera head (upstream `vggt/heads/camera_head.py`).

Reads the camera token (token 0) of the last aggregator output, normalises it (`token_norm`), then refines a
9-value pose encoding `num_iterations` times. Each iteration embeds the previous *raw* prediction (detached; the
learned `empty_pose_tokens` on the first pass), turns it into adaLN shift/scale/gate, modulates the same
normalised camera tokens, runs the trunk (attention across the S frames of a scene) and adds a delta. Only the
list entries are activated (translation and quaternion linear, FoV ReLU); the running prediction stays raw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rl3dedit.geometry.vggt.config import CameraHeadConfig
from rl3dedit.geometry.vggt.layers import Block, Mlp

__all__ = ["CameraHead", "activate_pose"]

POSE_DIM = 9


def _activate(x: Tensor, kind: str) -> Tensor:
    if kind == "linear":
        return x
    if kind == "relu":
        return F.relu(x)
    if kind == "exp":
        return torch.exp(x)
    raise ValueError(f"unknown pose activation {kind!r}; expected 'linear', 'relu' or 'exp'")


def activate_pose(raw: Tensor, trans_act: str = "linear", quat_act: str = "linear", fov_act: str = "relu") -> Tensor:
    """(..., 9) raw [t | quat xyzw | fov_h, fov_w] -> activated (..., 9)."""
    return torch.cat([_activate(raw[..., :3], trans_act), _activate(raw[..., 3:7], quat_act),
                      _activate(raw[..., 7:], fov_act)], dim=-1)


class CameraHead(nn.Module):
    """Keys: trunk.i.*, token_norm, trunk_norm, empty_pose_tokens (1, 1, 9), embed_pose, poseLN_modulation.1,
    pose_branch.fc1/fc2 (`adaln_norm` has no parameters)."""

    def __init__(self, cfg: CameraHeadConfig):
        super().__init__()
        if cfg.pose_encoding_type != "absT_quaR_FoV":
            raise ValueError(f"camera_head.pose_encoding_type {cfg.pose_encoding_type!r} is not supported; "
                             "only 'absT_quaR_FoV' exists in VGGT")
        self.cfg = cfg
        D = cfg.dim_in
        self.trunk = nn.Sequential(*(Block(D, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, init_values=cfg.init_values)
                                     for _ in range(cfg.trunk_depth)))
        self.token_norm = nn.LayerNorm(D)
        self.trunk_norm = nn.LayerNorm(D)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_DIM))
        self.embed_pose = nn.Linear(POSE_DIM, D)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 3 * D))
        self.adaln_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(D, D // 2, POSE_DIM)

    def forward(self, last_tokens: Tensor, num_iterations: int | None = None) -> list[Tensor]:
        """last_tokens (B, S, T, 2C) (the last aggregator output) -> list of `num_iterations` (B, S, 9)."""
        tokens = self.token_norm(last_tokens[:, :, 0])  # (B, S, D)
        B, S, _ = tokens.shape
        normed = self.adaln_norm(tokens)
        raw: Tensor | None = None
        out: list[Tensor] = []
        for _ in range(num_iterations or self.cfg.num_iterations):
            condition = self.empty_pose_tokens.expand(B, S, -1) if raw is None else raw.detach()
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(condition)).chunk(3, dim=-1)
            x = gate * (normed * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(x)))
            raw = delta if raw is None else raw + delta
            out.append(activate_pose(raw, self.cfg.trans_act, self.cfg.quat_act, self.cfg.fl_act))
        return out

"""Warp reward r_warp = exp(-L_ph) (`paper.md` §4.7): a rejected alternative to VGGT, for ablation 5 (Table 2).

L_ph is the Monodepth2-style photometric reprojection loss (`rl3dedit.geometry.photometric_reprojection_loss`)
over adjacent pairs, with VGGT's depth and the known (source) cameras, computed at VGGT's input resolution on the
preprocessed views VGGT saw. VGGT depth is up to scale, so it is first brought into the cameras' units with
`camera_translation_scale` (VGGT's camera centres against the known ones). A candidate whose pairs share no valid
pixels gets a NaN reward, which `CompositeReward` turns into the group minimum. As the paper reports, blur lowers
L_ph, so the reward is hacked by blurry outputs.
"""

from __future__ import annotations

import math

import torch

from rl3dedit.geometry import camera_translation_scale, photometric_reprojection_loss, preprocessed_size
from rl3dedit.rewards._verifier import run_verifier
from rl3dedit.rewards.breakdown import RewardBreakdown, check_views
from rl3dedit.rewards.config import VIEW_REWARD_TERMS
from rl3dedit.scene import Cameras

__all__ = ["WarpReward", "crop_preprocessed_intrinsics"]

PATCH = 14


def crop_preprocessed_intrinsics(
    Ks: torch.Tensor, source_hw: tuple[int, int], target_hw: tuple[int, int]
) -> torch.Tensor:
    """Intrinsics (V, 3, 3) after VGGT's `crop` preprocessing (`vggt.md` §1) from (H, W) to (H', W').

    The image is resized to width W' and height round(H W' / W / 14) * 14, then centre-cropped to H'
    (a no-op unless the view is portrait): scale each axis by its resize factor and shift c_y by the crop offset.
    """
    (h, w), (h_out, w_out) = source_hw, target_hw
    h_resized, _ = preprocessed_size(h, w, "crop", w_out)
    out = Ks.clone()
    out[:, 0, :] *= w_out / w
    out[:, 1, :] *= h_resized / h
    out[:, 2, :] = Ks[:, 2, :]
    out[:, 1, 2] -= (h_resized - h_out) // 2
    return out


class WarpReward:
    """r_warp = exp(-L_ph) per candidate (see the module docstring).

    Args:
        vggt: a VGGT module (as for `ConsistencyReward`).
        image_size: VGGT input width (multiple of 14).
        depth_rel_threshold: depth-agreement tau as a fraction of the target depth.
        batch_size: candidates per VGGT call; None = all at once.
    """

    term_names: tuple[str, ...] = VIEW_REWARD_TERMS["warp"]

    def __init__(self, vggt: torch.nn.Module, *, image_size: int = 518, depth_rel_threshold: float = 0.05,
                 batch_size: int | None = None) -> None:
        if image_size <= 0 or image_size % PATCH:
            raise ValueError(f"image_size={image_size} must be a positive multiple of {PATCH}")
        if not math.isfinite(depth_rel_threshold) or depth_rel_threshold <= 0:
            raise ValueError(f"depth_rel_threshold={depth_rel_threshold} must be a positive number")
        self.vggt = vggt.eval()
        self.image_size = image_size
        self.depth_rel_threshold = depth_rel_threshold
        self.batch_size = batch_size

    def score(self, views: torch.Tensor, cameras: Cameras) -> RewardBreakdown:
        """r_warp for G candidates: views (G, V, 3, H, W) in [0, 1], the V known cameras of the H x W views."""
        check_views(views)
        g, v, _, h, w = views.shape
        if len(cameras) != v:
            raise ValueError(f"cameras has {len(cameras)} cameras for {v} views per candidate")
        run = run_verifier(self.vggt, views, image_size=self.image_size, preprocess_mode="crop",
                           batch_size=self.batch_size)
        size = tuple(run.images.shape[-2:])
        cams = cameras.rescaled(w, h).to(device=views.device, dtype=torch.float32)
        Ks = crop_preprocessed_intrinsics(cams.Ks, (h, w), size)
        scale = camera_translation_scale(run.extrinsics, cams.viewmats)  # (G,)
        losses = []
        for i in range(g):
            result = photometric_reprojection_loss(
                run.images[i].to(views.device), run.depth[i] * scale[i], cams.viewmats, Ks,
                depth_rel_threshold=self.depth_rel_threshold,
            )
            losses.append(result.mean)
        r = torch.exp(-torch.stack(losses)).float()
        return RewardBreakdown(total=r, terms={"warp": r})

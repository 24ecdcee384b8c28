"""Warp reward r_warp = exp(-L_ph): photometric agreement of neighbouring views warped with a depth and the cameras.

L_ph is the Monodepth2-style photometric reprojection loss (`rl3dedit.geometry.photometric_reprojection_loss`, the
paper's Ph-Loss, appendix S2.2) over adjacent pairs with the known cameras. The depth comes from one of two sources:

- **the source scene** (`WarpReward(scene=...)`): the 3DGS the views were rendered from (or were edited from), rendered
  at the views' cameras and size. No model weights are needed; this is the edit job's, eval's and best-of-N's case,
  and `rl3dedit score --reward warp --scene PLY`. Pixels the scene does not cover (alpha < 0.5) are skipped.
- **VGGT** (`WarpReward(vggt)`): predicted depth at VGGT's input resolution on the preprocessed views it saw, up to
  scale, brought into the cameras' units with `camera_translation_scale`. This is the paper's rejected reward
  (Sec. 4.7, Table 2 ablation 5): blur lowers L_ph, so it can be hacked by blurry outputs.

A candidate whose pairs share no valid pixels gets a NaN reward, which `CompositeReward` turns into the group minimum.
"""

from __future__ import annotations

import math

import torch

from rl3dedit.geometry import camera_translation_scale, photometric_reprojection_loss
from rl3dedit.geometry.vggt import preprocessed_size
from rl3dedit.render.config import RENDER_CHUNK_SIZE
from rl3dedit.rewards._verifier import run_verifier
from rl3dedit.rewards.breakdown import RewardBreakdown, check_cameras, check_views
from rl3dedit.rewards.config import VIEW_REWARD_TERMS
from rl3dedit.scene import Cameras, GaussianScene

__all__ = ["WarpReward", "crop_preprocessed_intrinsics", "pair_to_view_scores"]

PATCH = 14
COVERED_ALPHA = 0.5
"""Rendered pixels with less accumulated opacity than this have no reliable surface and get no depth."""


def crop_preprocessed_intrinsics(
    Ks: torch.Tensor, source_hw: tuple[int, int], target_hw: tuple[int, int]
) -> torch.Tensor:
    """Intrinsics (V, 3, 3) after VGGT's `crop` preprocessing from (H, W) to (H', W').

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


def pair_to_view_scores(pair_scores: torch.Tensor) -> torch.Tensor:
    """(G, V) per-view scores from (G, V-1) adjacent-pair scores: each view gets the mean of the finite scores of
    the (one or two) pairs it belongs to, NaN if none is finite."""
    g, pairs = pair_scores.shape
    finite = torch.isfinite(pair_scores)
    value = torch.where(finite, pair_scores, torch.zeros_like(pair_scores))
    total = torch.zeros(g, pairs + 1, dtype=value.dtype, device=value.device)
    count = torch.zeros_like(total)
    for offset in (0, 1):  # pair m touches views m and m + 1
        total[:, offset:offset + pairs] += value
        count[:, offset:offset + pairs] += finite.to(value.dtype)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


class WarpReward:
    """r_warp = exp(-L_ph) per candidate (see the module docstring), with per-view scores from the adjacent pairs.

    Give exactly one depth source.

    Args:
        vggt: a VGGT module (as for `ConsistencyReward`): depth predicted from the views.
        scene: the source `GaussianScene`: depth rendered at the cameras, no weights needed.
        image_size: VGGT input width (multiple of 14; VGGT depth only).
        depth_rel_threshold: depth-agreement tau as a fraction of the target depth.
        batch_size: candidates per VGGT call; None = all at once.
        render_chunk_size: views per rasterizer call for the scene's depth (bounds its peak memory).
    """

    term_names: tuple[str, ...] = VIEW_REWARD_TERMS["warp"]
    needs_cameras: bool = True

    def __init__(self, vggt: torch.nn.Module | None = None, *, scene: GaussianScene | None = None,
                 image_size: int = 518, depth_rel_threshold: float = 0.05, batch_size: int | None = None,
                 render_chunk_size: int = RENDER_CHUNK_SIZE) -> None:
        if (vggt is None) == (scene is None):
            raise ValueError("WarpReward needs exactly one depth source: a VGGT module, or the source scene (scene=)")
        if image_size <= 0 or image_size % PATCH:
            raise ValueError(f"image_size={image_size} must be a positive multiple of {PATCH}")
        if not math.isfinite(depth_rel_threshold) or depth_rel_threshold <= 0:
            raise ValueError(f"depth_rel_threshold={depth_rel_threshold} must be a positive number")
        self.vggt = vggt.eval() if vggt is not None else None
        self.scene = scene
        self.image_size = image_size
        self.depth_rel_threshold = depth_rel_threshold
        self.batch_size = batch_size
        self.render_chunk_size = render_chunk_size

    @property
    def depth_source(self) -> str:
        """`scene` (rendered depth) or `vggt` (predicted depth)."""
        return "scene" if self.scene is not None else "vggt"

    def score(self, views: torch.Tensor, cameras: Cameras | None) -> RewardBreakdown:
        """r_warp for G candidates: views (G, V, 3, H, W) in [0, 1], the V known cameras (any image size)."""
        check_views(views)
        g, v, _, h, w = views.shape
        check_cameras(self, cameras, v)
        assert cameras is not None
        cams = cameras.rescaled(w, h).to(device=views.device, dtype=torch.float32)
        if self.scene is not None:
            images, depths, Ks = views.float(), self._rendered_depth(cams).expand(g, -1, -1, -1), cams.Ks
        else:
            images, depths, Ks = self._vggt_depth(views, cams)
        pair_losses = []
        for i in range(g):
            result = photometric_reprojection_loss(images[i], depths[i], cams.viewmats, Ks,
                                                   depth_rel_threshold=self.depth_rel_threshold)
            pair_losses.append(result.per_pair)
        losses = torch.stack(pair_losses).float()  # (G, V-1), NaN where a pair shares no valid pixel
        r = torch.exp(-losses.nanmean(dim=1))  # L_ph averages the pairs; NaN when no pair is valid
        return RewardBreakdown(total=r, terms={"warp": r}, per_view=pair_to_view_scores(torch.exp(-losses)))

    def _rendered_depth(self, cameras: Cameras) -> torch.Tensor:
        """(1, V, H, W) expected depth of the source scene at the cameras, 0 where it covers no surface."""
        from rl3dedit.render import render

        assert self.scene is not None
        with torch.no_grad():
            out = render(self.scene, cameras.to(self.scene.means.device), mode="ED", chunk_size=self.render_chunk_size)
        depth, alpha = out.depth[:, 0], out.alpha[:, 0]
        return torch.where(alpha >= COVERED_ALPHA, depth, torch.zeros_like(depth)).to(cameras.device)[None]

    def _vggt_depth(self, views: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """VGGT's preprocessed views (G, V, 3, H', W'), its depth in the cameras' units (G, V, H', W'), and the
        cameras' intrinsics at H' x W'."""
        assert self.vggt is not None
        h, w = views.shape[-2:]
        run = run_verifier(self.vggt, views, image_size=self.image_size, preprocess_mode="crop",
                           batch_size=self.batch_size)
        Ks = crop_preprocessed_intrinsics(cameras.Ks, (h, w), tuple(run.images.shape[-2:]))
        scale = camera_translation_scale(run.extrinsics, cameras.viewmats)  # (G,)
        return run.images.to(views.device), run.depth * scale[:, None, None, None], Ks

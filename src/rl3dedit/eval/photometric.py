"""Ph-Loss: RL3DEdit's photometric reprojection consistency of a set of views (lower is more consistent).

The paper's metric (docs/references.md §6): for each pair of adjacent views (A, B), warp A into B with a depth map
and the known cameras; keep pixels whose warped depth agrees with B's depth, |D_{A->B} - D_B| < tau; average the
Monodepth2 per-pixel loss 0.85 (1 - SSIM) / 2 + 0.15 L1 over the kept pixels; average over the V - 1 adjacent
pairs. The warp, mask and loss live in `rl3dedit.geometry.photometric_reprojection_loss`; this module chooses the
depth:

- `ph_loss_vggt`: the paper's metric, with depth VGGT infers from the (edited) views themselves. VGGT's depth is in
  its own normalised scale, so it is first rescaled to scene units with `geometry.camera_translation_scale` (the
  ratio of the known to the predicted camera-centre spread); the known cameras then do the warp.
- `ph_loss_rendered_depth`: the variant with depth rendered from the source 3DGS (exact geometry of the unedited
  scene, no VGGT; it penalises edits that move geometry, by design).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rl3dedit.geometry import camera_translation_scale, photometric_reprojection_loss
from rl3dedit.scene import Cameras


@dataclass
class PhLoss:
    """Ph-Loss of one ordered view set.

    Fields:
        per_pair: (V-1,) loss of each adjacent pair (A=v, B=v+1), NaN where a pair has no valid pixel.
        mean: mean over pairs with valid pixels (NaN when none has).
        valid_fraction: (V-1,) fraction of B's pixels inside the depth-agreement mask.
        depth_scale: the factor applied to the depth maps (1 for rendered depth; the VGGT-to-scene scale otherwise).
    """

    per_pair: torch.Tensor
    mean: float
    valid_fraction: torch.Tensor
    depth_scale: float


def _check_views(views: torch.Tensor, cameras: Cameras) -> None:
    if views.ndim != 4 or views.shape[1] != 3:
        raise ValueError(f"views must be (V, 3, H, W), got {tuple(views.shape)}")
    if views.shape[0] < 2:
        raise ValueError(f"Ph-Loss needs at least 2 views, got {views.shape[0]}")
    if len(cameras) != views.shape[0]:
        raise ValueError(f"{views.shape[0]} views but {len(cameras)} cameras")
    if (cameras.height, cameras.width) != tuple(views.shape[2:]):
        raise ValueError(
            f"cameras are for {cameras.width}x{cameras.height} images, views are {views.shape[3]}x{views.shape[2]}"
        )


def _ph_loss(views: torch.Tensor, depth: torch.Tensor, cameras: Cameras, threshold: float, scale: float) -> PhLoss:
    result = photometric_reprojection_loss(
        views.float(), depth.float(), cameras.viewmats.float(), cameras.Ks.float(), depth_rel_threshold=threshold
    )
    return PhLoss(
        per_pair=result.per_pair.detach().float().cpu(), mean=float(result.mean),
        valid_fraction=result.valid_fraction.detach().float().cpu(), depth_scale=scale,
    )


def ph_loss_rendered_depth(
    views: torch.Tensor, depth: torch.Tensor, cameras: Cameras, *, depth_rel_threshold: float
) -> PhLoss:
    """Ph-Loss of `views` (V, 3, H, W) in [0, 1] warped with rendered depth (V, 1, H, W) or (V, H, W), scene units.

    `cameras` are the V cameras of the views, in order (w2c OpenCV `viewmats`, pixel `Ks` at H x W).
    """
    _check_views(views, cameras)
    if depth.ndim == 4:
        depth = depth[:, 0]
    if tuple(depth.shape) != (views.shape[0], *views.shape[2:]):
        raise ValueError(f"depth must be (V, H, W) matching the views, got {tuple(depth.shape)}")
    return _ph_loss(views, depth, cameras, depth_rel_threshold, 1.0)


@torch.no_grad()
def ph_loss_vggt(
    views: torch.Tensor, cameras: Cameras, vggt, *, image_size: int, depth_rel_threshold: float
) -> PhLoss:
    """The paper's Ph-Loss: depth from VGGT run on `views` (V, 3, H, W) in [0, 1], warp with the known `cameras`.

    Args:
        vggt: a `rl3dedit.geometry.vggt` model; called on (1, V, 3, h, w) images in [0, 1].
        image_size: VGGT input width (multiple of 14; `verifier.image_size`); the height follows VGGT's rule
            (`preprocessed_size`), without cropping.
    """
    from rl3dedit.geometry.vggt import pose_encoding_to_extri_intri, preprocessed_size

    _check_views(views, cameras)
    _, _, H, W = views.shape
    device = next(vggt.parameters()).device
    # VGGT's size rule without its centre crop, so the predicted depth covers every pixel of the view.
    h, w = preprocessed_size(H, W, "crop", image_size)
    resized = F.interpolate(views.float(), size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    out = vggt(resized.clamp(0, 1).to(device)[None])
    depth = out.depth[0, ..., 0].float()  # (V, h, w), VGGT's normalised units
    extrinsics, _ = pose_encoding_to_extri_intri(out.pose_enc.float(), (h, w))
    scale = float(camera_translation_scale(extrinsics[0].cpu(), cameras.viewmats.float().cpu()))
    depth = F.interpolate(depth[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0] * scale
    return _ph_loss(views, depth.to(views.device), cameras, depth_rel_threshold, scale)

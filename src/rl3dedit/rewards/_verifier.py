"""One batched, inference-mode VGGT pass over G candidate view sets (shared by the consistency and warp rewards)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from rl3dedit.geometry import extrinsic_to_viewmats, pose_encoding_to_extri_intri, preprocess_images


@dataclass
class VerifierRun:
    """VGGT outputs for G candidates of V views at VGGT's input size H' x W'.

    Fields:
        images: (G, V, 3, H', W') the preprocessed views VGGT saw, in [0, 1].
        extrinsics: (G, V, 4, 4) predicted camera-from-world poses (OpenCV, first camera ~ identity, up to scale).
        depth: (G, V, H', W') predicted z-depth (up to scale).
        depth_conf, point_conf: (G, V, H', W') raw confidences (>= 1).
    """

    images: torch.Tensor
    extrinsics: torch.Tensor
    depth: torch.Tensor
    depth_conf: torch.Tensor
    point_conf: torch.Tensor


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameterless stand-in)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def run_verifier(
    vggt: torch.nn.Module,
    views: torch.Tensor,  # (G, V, 3, H, W)
    *,
    image_size: int,
    preprocess_mode: Literal["crop", "pad"] = "crop",
    batch_size: int | None = None,
) -> VerifierRun:
    """Preprocess all G*V views at once (docs/references.md §4), run VGGT in inference mode with B = G (in chunks of
    `batch_size` candidates when given), and decode poses (VGGT's pose encoding). Outputs are float32 on the views' device.
    """
    g, v = views.shape[:2]
    flat = preprocess_images(views.reshape(g * v, *views.shape[2:]).float(), mode=preprocess_mode,
                             target_size=image_size)
    images = flat.reshape(g, v, *flat.shape[1:])
    device = model_device(vggt)
    step = batch_size or g
    parts = []
    with torch.inference_mode():
        for start in range(0, g, step):
            out = vggt(images[start:start + step].to(device))
            extrinsic, _ = pose_encoding_to_extri_intri(out.pose_enc.float(), tuple(images.shape[-2:]))
            parts.append((extrinsic_to_viewmats(extrinsic.float()), out.depth[..., 0].float(), out.depth_conf.float(),
                          out.world_points_conf.float()))
    extrinsics, depth, depth_conf, point_conf = (torch.cat(chunk).to(views.device) for chunk in zip(*parts))
    return VerifierRun(images=images, extrinsics=extrinsics, depth=depth, depth_conf=depth_conf, point_conf=point_conf)

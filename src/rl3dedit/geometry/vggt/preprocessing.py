"""VGGT input preprocessing on tensors (upstream `load_and_preprocess_images`, docs/references.md §4).

Resampling: upstream resizes 8-bit PIL images with BICUBIC. Here the resize is
`F.interpolate(mode="bicubic", antialias=True)` on floats (the same Keys a = -0.5 kernel, widened when
downscaling, as PIL does), followed by a clamp to [0, 1] instead of PIL's rounding to 8 bits: against the PIL
pipeline the mean difference is about 0.3 of an 8-bit step and the maximum a few steps on sharp images (tested).
Sizes, crops and padding follow upstream exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["preprocess_images", "preprocessed_size"]

logger = logging.getLogger(__name__)

PATCH = 14


def preprocessed_size(height: int, width: int, mode: Literal["crop", "pad"] = "crop",
                      target_size: int = 518) -> tuple[int, int]:
    """(H', W') after the resize step (before cropping or padding) for an H x W image.

    crop: W' = target, H' = round(H * target / W / 14) * 14. pad: the longer side becomes target, the other
    round(side * target / longer / 14) * 14. Python's round (half to even) as upstream.
    """
    if mode == "crop" or width >= height:
        return round(height * (target_size / width) / PATCH) * PATCH, target_size
    return target_size, round(width * (target_size / height) / PATCH) * PATCH


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    out = F.interpolate(image[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0]
    return out.clamp(0.0, 1.0)


def _pad_to(image: Tensor, height: int, width: int) -> Tensor:
    """Centre `image` (3, h, w) on a white (1.0) canvas of height x width; extra pixel goes bottom/right."""
    dh, dw = height - image.shape[-2], width - image.shape[-1]
    if dh <= 0 and dw <= 0:
        return image
    return F.pad(image, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="constant", value=1.0)


def _one(image: Tensor, mode: str, target_size: int) -> Tensor:
    new_h, new_w = preprocessed_size(image.shape[-2], image.shape[-1], mode, target_size)  # type: ignore[arg-type]
    image = _resize(image, (new_h, new_w))
    if mode == "crop" and new_h > target_size:
        top = (new_h - target_size) // 2
        image = image[:, top:top + target_size]
    if mode == "pad":
        image = _pad_to(image, target_size, target_size)
    return image


def preprocess_images(images: Tensor | Sequence[Tensor], mode: Literal["crop", "pad"] = "crop",
                      target_size: int = 518) -> Tensor:
    """Resize (and crop or pad) views to VGGT's input size.

    Args:
        images: (S, 3, H, W) floats in [0, 1], or a sequence of (3, H_i, W_i) images of possibly different sizes.
        mode: "crop": width -> target_size, height scaled to a multiple of 14 and centre-cropped to target_size
            if taller (portrait inputs lose top and bottom). "pad": longer side -> target_size, then centred on a
            white target_size square.
        target_size: output width (crop) or side (pad); a multiple of 14 (518 for VGGT-1B).
    Returns:
        (S, 3, H', W') floats in [0, 1], H' and W' multiples of 14. If the per-image results differ in size
        (mixed aspect ratios in crop mode), each is padded with white, centred, to the largest H' and W' (with a
        warning, as upstream).
    """
    if mode not in ("crop", "pad"):
        raise ValueError(f"mode must be 'crop' or 'pad', got {mode!r}")
    if target_size <= 0 or target_size % PATCH:
        raise ValueError(f"target_size must be a positive multiple of {PATCH}, got {target_size}")
    items = list(images.unbind(0)) if isinstance(images, Tensor) else list(images)
    if not items:
        raise ValueError("preprocess_images got no images")
    for i, image in enumerate(items):
        if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"image {i} must be a float (3, H, W) tensor in [0, 1], got {tuple(image.shape)} "
                             f"{image.dtype}")
    out = [_one(image, mode, target_size) for image in items]
    sizes = {tuple(o.shape[-2:]) for o in out}
    if len(sizes) > 1:
        max_h = max(s[0] for s in sizes)
        max_w = max(s[1] for s in sizes)
        logger.warning("images of different sizes %s; padding all to %dx%d with white", sorted(sizes), max_h, max_w)
        out = [_pad_to(o, max_h, max_w) for o in out]
    return torch.stack(out)

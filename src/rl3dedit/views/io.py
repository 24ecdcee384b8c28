"""Image files for the project: tensors in [0, 1] in memory, 8-bit files on disk (PIL only at this boundary)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rl3dedit.files import atomic_path, read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write a (3, H, W) image in [0, 1] (clamped, rounded to 8 bits) atomically; the format follows the suffix."""
    from PIL import Image

    path = Path(path)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"save_image({path}): expected a (3, H, W) tensor, got {tuple(image.shape)}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"save_image({path}): unknown image suffix {path.suffix!r} (use one of {IMAGE_SUFFIXES})")
    array = (image.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(array.permute(1, 2, 0).numpy()).save(tmp, format=Image.registered_extensions()[path.suffix.lower()])
    return path


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a (3, H, W) float32 tensor in [0, 1] at the file's precision (8- or 16-bit; greyscale
    and alpha images converted to RGB); see `rl3dedit.files.read_image` for the errors."""
    return torch.from_numpy(read_image(path)).permute(2, 0, 1).contiguous()


def load_views(folder: str | Path) -> torch.Tensor:
    """All images of `folder` (sorted by file name) as (V, 3, H, W) in [0, 1]; they must share one size."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of views")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"{folder}: no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})")
    images = [load_image(p) for p in paths]
    sizes = {tuple(im.shape[1:]) for im in images}
    if len(sizes) != 1:
        raise ValueError(f"{folder}: views have different sizes {sorted(sizes)} (H, W); they must match")
    return torch.stack(images)


def _label_strip(text: str, height: int, width: int) -> torch.Tensor:
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    box = draw.textbbox((0, 0), text)
    draw.text((4, max(0, (height - (box[3] - box[1])) // 2)), text, fill=(0, 0, 0))
    return torch.from_numpy(np.asarray(strip, dtype=np.float32) / 255.0).permute(2, 0, 1)


def make_comparison_sheet(rows: Sequence[torch.Tensor], labels: Sequence[str], gap: int = 4) -> torch.Tensor:
    """A (3, H', W') sheet with one row per view stack (e.g. source over edited), each with a text label on the left.

    Args:
        rows: view stacks (V, 3, H, W), all the same shape, values in [0, 1].
        labels: one label per row.
        gap: white pixels between views and between rows.
    """
    if not rows or len(rows) != len(labels):
        raise ValueError(f"make_comparison_sheet: need one label per row, got {len(rows)} rows and {len(labels)} labels")
    shape = tuple(rows[0].shape)
    if len(shape) != 4 or shape[1] != 3 or any(tuple(r.shape) != shape for r in rows):
        raise ValueError(
            f"make_comparison_sheet: rows must all be (V, 3, H, W) of one shape, got {[tuple(r.shape) for r in rows]}"
        )
    v, _, h, w = shape
    label_w = 8 + 7 * max(len(label) for label in labels)
    row_w = label_w + v * (w + gap)
    sheet = torch.ones(3, len(rows) * (h + gap) + gap, row_w)
    for r, (views, label) in enumerate(zip(rows, labels)):
        top = gap + r * (h + gap)
        sheet[:, top : top + h, :label_w] = _label_strip(label, h, label_w)
        for i, view in enumerate(views.detach().to("cpu", torch.float32).clamp(0, 1)):
            left = label_w + i * (w + gap)
            sheet[:, top : top + h, left : left + w] = view
    return sheet

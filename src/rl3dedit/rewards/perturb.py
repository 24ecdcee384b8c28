"""Inconsistent variants of a consistent view set, for validating view-set rewards (issue 14): a reward worth using
ranks the consistent set above each of them. `benchmarks/score_rewards.py` measures this on the real captures and
`tests/test_rewards_ranking.py` keeps it on a small synthetic case.

All functions take views (V, 3, H, W) in [0, 1] and a `torch.Generator`, and return a new (V, 3, H, W) tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["PERTURBATIONS", "hue_shift", "replace_one_view", "shift_one_view", "shuffle_views"]

# RGB <-> YIQ (NTSC): hue is the angle of the (I, Q) chroma vector, so a hue shift is a rotation in that plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def hue_shift(views: torch.Tensor, generator: torch.Generator, *, min_degrees: float = 60.0) -> torch.Tensor:
    """Each view's hue rotated by its own random angle, |angle| in [min_degrees, 180] (brightness kept)."""
    v = views.shape[0]
    magnitude = min_degrees + torch.rand(v, generator=generator) * (180.0 - min_degrees)
    sign = torch.where(torch.rand(v, generator=generator) < 0.5, -1.0, 1.0)
    angle = torch.deg2rad(magnitude * sign)
    to_yiq = _RGB_TO_YIQ.to(views)
    to_rgb = torch.linalg.inv(to_yiq)
    out = torch.empty_like(views)
    for i in range(v):
        c, s = math.cos(float(angle[i])), math.sin(float(angle[i]))
        rotate = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=views.dtype, device=views.device)
        matrix = to_rgb @ rotate @ to_yiq
        out[i] = torch.einsum("ij,jhw->ihw", matrix, views[i])
    return out.clamp(0, 1)


def shuffle_views(views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The views in a random order where no view keeps its place (so none matches its camera)."""
    v = views.shape[0]
    while True:
        order = torch.randperm(v, generator=generator)
        if bool((order != torch.arange(v)).all()):
            return views[order]


def replace_one_view(views: torch.Tensor, generator: torch.Generator, *, other: torch.Tensor) -> torch.Tensor:
    """One random view replaced by `other` (3, H', W'), a view of another scene, resized to H x W."""
    out = views.clone()
    index = int(torch.randint(views.shape[0], (1,), generator=generator))
    out[index] = F.interpolate(other[None].to(views), size=views.shape[-2:], mode="bilinear", antialias=True,
                               align_corners=False)[0].clamp(0, 1)
    return out


def shift_one_view(views: torch.Tensor, generator: torch.Generator, *, pixels: int = 4) -> torch.Tensor:
    """One random view translated by `pixels` in a random direction (the border pixels repeated into the gap)."""
    out = views.clone()
    index = int(torch.randint(views.shape[0], (1,), generator=generator))
    angle = float(torch.rand(1, generator=generator)) * 2 * math.pi
    dx, dy = round(pixels * math.cos(angle)), round(pixels * math.sin(angle))
    h, w = views.shape[-2:]
    padded = F.pad(views[index:index + 1], (pixels, pixels, pixels, pixels), mode="replicate")[0]
    out[index] = padded[:, pixels - dy:pixels - dy + h, pixels - dx:pixels - dx + w]
    return out


PERTURBATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "hue": hue_shift,
    "replaced": replace_one_view,
    "shuffled": shuffle_views,
    "shifted": shift_one_view,
}
"""Name -> perturbation; `replaced` needs `other=` (a view of another scene)."""

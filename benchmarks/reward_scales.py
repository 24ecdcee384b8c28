"""Scales of the reward terms under each VGGT confidence transform, and reward timings on a 2-core CPU.

1. Model-free: confidence maps shaped like real VGGT output (docs/references.md §4: mean ~40, max ~260; inconsistent
   regions collapse to c ~ 1) with a growing fraction of collapsed pixels, as when more views of a set are replaced
   by inconsistent edits (paper Fig. 5, docs/references.md §1). Prints each transform's term value per fraction,
   its total swing, and how much a few over-confident pixels move it.
2. The tiny random VGGT on rendered views: raw and transformed term values and their spread across a group
   (only scales: random weights cannot judge consistency).
3. Timings: ConsistencyReward (tiny preset), LPIPS, Ph-Loss, SfMReward.

Run: python benchmarks/reward_scales.py
"""

from __future__ import annotations

import math
import time

import torch

from rl3dedit.geometry import build_tiny_vggt, photometric_reprojection_loss
from rl3dedit.render import render
from rl3dedit.rewards import ConsistencyReward, SfMReward, load_lpips, transform_confidence
from rl3dedit.rewards.confidence import CONFIDENCE_TRANSFORMS
from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene


def realistic_confidence(collapsed: float, generator: torch.Generator, n: int = 200_000) -> torch.Tensor:
    """Per-pixel confidence: 1 + lognormal with mean ~39 for reliable pixels, 1 + U(0, 0.5) for collapsed ones."""
    sigma = 1.0
    mu = math.log(39.0) - sigma**2 / 2
    reliable = 1 + torch.exp(mu + sigma * torch.randn(n, generator=generator)).clamp(max=259.0)
    broken = 1 + 0.5 * torch.rand(n, generator=generator)
    pick = torch.rand(n, generator=generator) < collapsed
    return torch.where(pick, broken, reliable)


def model_free_scales() -> None:
    generator = torch.Generator().manual_seed(0)
    fractions = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]
    print("1. term value vs fraction of collapsed pixels (r_T and r_a live in [0, 1])")
    print("transform  " + "  ".join(f"f={f:.1f}".rjust(7) for f in fractions) + "   swing  hack(+5% px at 260)")
    for name in CONFIDENCE_TRANSFORMS:
        values = [float(transform_confidence(realistic_confidence(f, generator), name).mean()) for f in fractions]
        base = realistic_confidence(0.3, generator)
        boosted = base.clone()
        boosted[: len(base) // 20] = 260.0
        hack = float(transform_confidence(boosted, name).mean() - transform_confidence(base, name).mean())
        print(f"{name:9s}  " + "  ".join(f"{v:7.3f}" for v in values) + f"  {values[0] - values[-1]:6.3f}  {hack:+.3f}")


def arc_views(num_views: int, size: int) -> tuple[torch.Tensor, Cameras]:
    angles = torch.deg2rad(torch.arange(num_views) * 10.0)
    target = torch.tensor(SYNTHETIC_TARGET)
    eyes = target + torch.stack([2.4 * angles.cos(), 2.4 * angles.sin(), torch.full_like(angles, 1.35)], dim=1)
    cameras = Cameras(look_at_viewmats(eyes, target, torch.tensor([0.0, 0.0, 1.0])),
                      intrinsics_from_fov(50.0, size, size).expand(num_views, 3, 3).clone(), size, size)
    with torch.no_grad():
        out = render(make_synthetic_scene(seed=0), cameras, mode="RGB+ED", background=(1.0, 1.0, 1.0))
    return out.rgb.clamp(0, 1), out.depth[:, 0], cameras


def tiny_vggt_scales(views: torch.Tensor, cameras: Cameras) -> None:
    print("\n2. tiny random VGGT, 9 rendered views at 56 px, group of 8 (views + small noise); mean [min, max]")
    generator = torch.Generator().manual_seed(1)
    group = (views[None] + 0.03 * torch.randn(8, *views.shape, generator=generator)).clamp(0, 1)
    vggt = build_tiny_vggt(seed=0)
    for name in CONFIDENCE_TRANSFORMS:
        out = ConsistencyReward(vggt, confidence_transform=name, image_size=56).evaluate(group, cameras)
        cells = [f"{k}={float(t.mean()):.3f} [{float(t.min()):.3f}, {float(t.max()):.3f}]"
                 for k, t in out.breakdown.terms.items()]
        print(f"{name:9s}  " + "  ".join(cells))
    raw = ConsistencyReward(vggt, confidence_transform="raw", image_size=56).evaluate(group, cameras)
    print(f"raw per-view depth confidence range: {float(raw.raw_depth_confidence.min()):.3f}.."
          f"{float(raw.raw_depth_confidence.max()):.3f}")


def timed(fn, repeat: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def timings(views56: torch.Tensor, cameras56: Cameras) -> None:
    print("\n3. timings (2-core CPU, float32)")
    vggt = build_tiny_vggt(seed=0)
    reward = ConsistencyReward(vggt, image_size=56)
    group = views56[None].expand(4, -1, -1, -1, -1).contiguous()
    print(f"ConsistencyReward tiny VGGT, G=4, V=9, 56 px: {timed(lambda: reward.score(group, cameras56)):.3f} s")
    lpips = load_lpips(seed=0)
    x = torch.rand(16, 3, 64, 64)
    print(f"LPIPS, 16 pairs at 64 px: {timed(lambda: lpips(x, x.flip(0))):.3f} s")
    views, depths, cameras = arc_views(9, 128)
    print(f"Ph-Loss, 9 views at 128 px: "
          f"{timed(lambda: photometric_reprojection_loss(views, depths, cameras.viewmats, cameras.Ks)):.3f} s")
    sfm = SfMReward()
    print(f"SfMReward, G=1, V=9 at 128 px: {timed(lambda: sfm.score(views[None], cameras), repeat=1):.3f} s")


def main() -> None:
    torch.manual_seed(0)
    model_free_scales()
    views, _, cameras = arc_views(9, 56)
    tiny_vggt_scales(views, cameras)
    timings(views, cameras)


if __name__ == "__main__":
    main()

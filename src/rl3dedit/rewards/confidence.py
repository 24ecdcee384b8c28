"""Per-pixel transforms of VGGT confidence maps before the spatial mean of r_D and r_P (paper Eq. 1).

VGGT confidence is c = 1 + exp(x) >= 1 and unbounded (docs/references.md §4). It is trained against
gamma |err| c - alpha log c, whose optimum is c* = alpha / err with alpha = 0.2: c is an inverse predicted error
in normalised scene units, and pixels whose expected error exceeds ~0.2 of the scene scale collapse to c = 1.
Reported real-model statistics: mean ~40, max ~260 (VGGT issue #225); "all nearly 1.0" for inconsistent or
low-overlap inputs (issue #170).

Transforms (the paper says only "average confidence"):
- `raw`: c itself (paper-literal). Means of tens with per-scene spreads of tens; mixed with r_T and r_a in [0, 1]
  under equal weights it decides the composite alone (GRPO's group z-score removes a common scale, not the
  relative weight of terms).
- `inverse` (default): 1 - 1/c in [0, 1), identical to sigmoid(log(c - 1)), the sigmoid of VGGT's
  pre-activation logit. Since 1/c = err / alpha, it is 1 - 5 err per pixel: linear in the predicted error for
  reliable pixels, 0 for collapsed ones. Its mean is roughly the fraction of pixels with trustworthy geometry,
  which is what inconsistent content lowers (confidence falls locally to ~1 where views disagree, paper
  Fig. 5), while a few over-confident pixels (c ~ 260 vs 40) move it by < 0.02, so it cannot be hacked by
  sharpening already-good regions. It lies on the same [0, 1] scale as r_T and r_a.
- `log`: log c in [0, inf); compresses but does not bound (mean ~3.7 for c ~ 40).

Measured (`benchmarks/reward_scales.py`, `benchmarks/RESULTS.md`) on confidence maps shaped like real VGGT
output (reliable pixels 1 + lognormal with mean ~39, capped at 260; a fraction f collapsed to c in [1, 1.5]):

    f                 0.0     0.3     0.5     0.9    swing   +5% pixels at c=260 (f=0.3)
    raw             38.82   27.58   20.03    5.03    33.79   +11.59
    inverse          0.94    0.71    0.56    0.26     0.68    +0.014
    log              3.23    2.33    1.72    0.52     2.71    +0.16

`inverse` is linear in the collapsed fraction, swings over a range comparable to r_T and r_a (both in [0, 1]), and
the over-confidence "hack" is worth 2% of its swing (34% for `raw`). The tiny random VGGT only shows the scales:
raw means ~2.0-2.2 (inverse ~0.50-0.54) with spreads below 0.003 across a group.
"""

from __future__ import annotations

import torch

from rl3dedit.rewards.config import ConfidenceTransformName

__all__ = ["CONFIDENCE_TRANSFORMS", "transform_confidence"]

CONFIDENCE_TRANSFORMS: tuple[ConfidenceTransformName, ...] = ("raw", "inverse", "log")


def transform_confidence(confidence: torch.Tensor, transform: ConfidenceTransformName) -> torch.Tensor:
    """Apply a named per-pixel transform to VGGT confidence (any shape, values >= 1); see the module docstring."""
    if transform == "raw":
        return confidence
    if transform == "inverse":
        return 1 - 1 / confidence.clamp_min(1)
    if transform == "log":
        return torch.log(confidence.clamp_min(1))
    raise ValueError(f"unknown confidence transform {transform!r}; choose one of {', '.join(CONFIDENCE_TRANSFORMS)}")

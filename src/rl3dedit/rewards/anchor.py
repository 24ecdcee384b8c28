"""Anchor reward (paper Eq. 3): r_a = exp(-lambda * LPIPS(I'_a, I~_a)) on each candidate's own anchor view."""

from __future__ import annotations

import math

import torch

from rl3dedit.rewards.breakdown import RewardBreakdown
from rl3dedit.rewards.lpips import LPIPS

__all__ = ["AnchorReward"]


class AnchorReward:
    """Fidelity to the single-view edit of the anchor view (paper Eq. 3).

    r_a = exp(-lambda * LPIPS(I'_a, I~_a)) in (0, 1], computed on the generated anchor view I'_a (before it is
    substituted) against the precomputed single-view edit I~_a. lambda is not stated by the paper; our presets use
    2.0, which maps LPIPS 0.1-0.5 to r_a 0.82-0.37 (the paper does not state the mapping; spreading r_a over (0, 1) keeps it comparable to the other terms).

    Args:
        lpips_model: an `LPIPS` (`load_lpips`), or any module mapping two (B, 3, H, W) batches in [0, 1] to (B,).
        lam: lambda >= 0.
    """

    term_names: tuple[str, ...] = ("anchor",)

    def __init__(self, lpips_model: LPIPS | torch.nn.Module, lam: float = 2.0) -> None:
        if not math.isfinite(lam) or lam < 0:
            raise ValueError(f"lam={lam} must be a finite number >= 0")
        self.lpips = lpips_model.eval()
        self.lam = lam

    def score(self, anchors: torch.Tensor, reference: torch.Tensor) -> RewardBreakdown:
        """Score G candidate anchor views against one reference.

        Args:
            anchors: (G, 3, H, W) each candidate's generated anchor view, in [0, 1].
            reference: (3, H, W) the single-view edit I~_a, in [0, 1].

        Returns:
            `RewardBreakdown` with total = term `anchor` = r_a, (G,).
        """
        if anchors.ndim != 4 or anchors.shape[1] != 3:
            raise ValueError(f"anchors has shape {tuple(anchors.shape)}, expected (G, 3, H, W)")
        if reference.shape != anchors.shape[1:]:
            raise ValueError(f"anchor reference has shape {tuple(reference.shape)}, expected "
                             f"{tuple(anchors.shape[1:])} (the size of the views)")
        param = next(self.lpips.parameters(), None)
        device = param.device if param is not None else anchors.device
        with torch.no_grad():
            distance = self.lpips(anchors.to(device), reference.expand_as(anchors).to(device)).float()
        r_a = torch.exp(-self.lam * distance).to(anchors.device)
        return RewardBreakdown(total=r_a, terms={"anchor": r_a})

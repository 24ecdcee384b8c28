"""The reward contract: a `RewardBreakdown` per group of candidates, and the protocols rewards implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from rl3dedit.scene import Cameras

__all__ = ["RewardBreakdown", "ViewSetReward"]


@dataclass
class RewardBreakdown:
    """Rewards of G candidates.

    Fields:
        total: (G,) the scalar reward each candidate receives.
        terms: name -> (G,) the named terms `total` is made of (e.g. `depth`, `point`, `pose`, `anchor`).
        failed: (G,) bool, candidates whose scoring failed and that were given the group minimum
            (`CompositeReward` only; None elsewhere).
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    failed: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.total.ndim != 1:
            raise ValueError(f"RewardBreakdown.total has shape {tuple(self.total.shape)}, expected (G,)")
        for name, term in self.terms.items():
            if term.shape != self.total.shape:
                raise ValueError(f"RewardBreakdown term {name!r} has shape {tuple(term.shape)}, "
                                 f"expected {tuple(self.total.shape)}")

    def as_floats(self, index: int = 0) -> dict[str, float]:
        """Candidate `index`'s total and terms as plain floats (for logs and JSON)."""
        out = {name: float(term[index]) for name, term in self.terms.items()}
        out["total"] = float(self.total[index])
        return out


@runtime_checkable
class ViewSetReward(Protocol):
    """A reward on whole view sets: VGGT consistency, or the SfM and warp alternatives.

    `term_names` lists the keys of `RewardBreakdown.terms` that `score` returns; `score` takes
    views (G, V, 3, H, W) in [0, 1] and the V source cameras (`Cameras`, world-to-camera OpenCV).
    """

    term_names: tuple[str, ...]

    def score(self, views: torch.Tensor, cameras: Cameras) -> RewardBreakdown: ...


def check_views(views: torch.Tensor, name: str = "views") -> None:
    """Refuse anything but a (G, V, 3, H, W) floating tensor with V >= 2."""
    if views.ndim != 5 or views.shape[2] != 3 or views.shape[1] < 2:
        raise ValueError(f"{name} has shape {tuple(views.shape)}, expected (G, V, 3, H, W) with V >= 2")
    if not views.is_floating_point():
        raise ValueError(f"{name} has dtype {views.dtype}, expected floating point images in [0, 1]")

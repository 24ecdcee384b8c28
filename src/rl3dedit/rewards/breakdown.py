"""The reward contract: a `RewardBreakdown` per group of candidates, and the protocols rewards implement.

Every reward returns a `RewardBreakdown` on a scale where higher is better. View-set rewards (VGGT consistency,
warp, SfM) share one call, `score(views, cameras)`; the training reward adds the anchor protocol's arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from rl3dedit.scene import Cameras

__all__ = ["RewardBreakdown", "TrainingReward", "ViewSetReward"]


@dataclass
class RewardBreakdown:
    """Rewards of G candidates.

    Fields:
        total: (G,) the scalar reward each candidate receives.
        terms: name -> (G,) the named terms `total` is made of (e.g. `depth`, `point`, `pose`, `anchor`).
        failed: (G,) bool, candidates whose scoring failed and that were given the group minimum
            (`CompositeReward` only; None elsewhere).
        per_view: (G, V) how consistent each view is with the rest of its set, higher = more consistent, on the
            reward's own scale (which views break a set); None when the reward has no per-view reading.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    failed: torch.Tensor | None = None
    per_view: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.total.ndim != 1:
            raise ValueError(f"RewardBreakdown.total has shape {tuple(self.total.shape)}, expected (G,)")
        for name, term in self.terms.items():
            if term.shape != self.total.shape:
                raise ValueError(f"RewardBreakdown term {name!r} has shape {tuple(term.shape)}, "
                                 f"expected {tuple(self.total.shape)}")
        if self.per_view is not None and (self.per_view.ndim != 2 or self.per_view.shape[0] != self.total.shape[0]):
            raise ValueError(f"RewardBreakdown.per_view has shape {tuple(self.per_view.shape)}, "
                             f"expected ({self.total.shape[0]}, V)")

    def as_floats(self, index: int = 0) -> dict[str, float]:
        """Candidate `index`'s total and terms as plain floats (for logs and JSON)."""
        out = {name: float(term[index]) for name, term in self.terms.items()}
        out["total"] = float(self.total[index])
        return out


@runtime_checkable
class ViewSetReward(Protocol):
    """A reward on whole view sets: VGGT consistency (`ConsistencyReward`), `WarpReward` or `SfMReward`.

    `score(views, cameras)` takes views (G, V, 3, H, W) in [0, 1] and the V cameras the views were taken from
    (`Cameras`, world-to-camera OpenCV, any image size: rewards rescale them to H x W), and returns a
    `RewardBreakdown` with `total` (G,) in [0, 1] (higher = more consistent), the terms named by `term_names`,
    and `per_view` (G, V). Rewards with `needs_cameras` refuse `cameras=None`; the others drop their camera terms.
    """

    term_names: tuple[str, ...]
    needs_cameras: bool

    def score(self, views: torch.Tensor, cameras: Cameras | None) -> RewardBreakdown: ...


@runtime_checkable
class TrainingReward(Protocol):
    """The GRPO reward of a group (`CompositeReward`): a view-set reward on the anchor-substituted views plus the
    anchor reward (paper Eqs. 3-4). `anchor_reference` is the (3, H, W) single-view edit of view `anchor_index`."""

    term_names: tuple[str, ...]

    def score(self, views: torch.Tensor, cameras: Cameras, *, anchor_index: int,
              anchor_reference: torch.Tensor) -> RewardBreakdown: ...


def check_cameras(reward: object, cameras: Cameras | None, num_views: int) -> None:
    """Refuse missing cameras for a reward that needs them, and a camera count that differs from the views'."""
    if cameras is None:
        if getattr(reward, "needs_cameras", False):
            raise ValueError(f"{type(reward).__name__} needs the views' cameras; got cameras=None")
        return
    if len(cameras) != num_views:
        raise ValueError(f"cameras has {len(cameras)} cameras for {num_views} views per candidate")


def check_views(views: torch.Tensor, name: str = "views") -> None:
    """Refuse anything but a (G, V, 3, H, W) floating tensor with V >= 2."""
    if views.ndim != 5 or views.shape[2] != 3 or views.shape[1] < 2:
        raise ValueError(f"{name} has shape {tuple(views.shape)}, expected (G, V, 3, H, W) with V >= 2")
    if not views.is_floating_point():
        raise ValueError(f"{name} has dtype {views.dtype}, expected floating point images in [0, 1]")

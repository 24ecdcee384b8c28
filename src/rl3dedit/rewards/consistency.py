"""VGGT consistency reward: depth and point confidence (paper Eq. 1) and relative-pose agreement (Eq. 2)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch

from rl3dedit.geometry import RelativePoseError, relative_pose_error
from rl3dedit.rewards._verifier import run_verifier
from rl3dedit.rewards.breakdown import RewardBreakdown, check_cameras, check_views
from rl3dedit.rewards.confidence import CONFIDENCE_TRANSFORMS, transform_confidence
from rl3dedit.rewards.config import VIEW_REWARD_TERMS, ConfidenceTransformName
from rl3dedit.scene import Cameras

__all__ = ["ConsistencyEvaluation", "ConsistencyReward"]

logger = logging.getLogger(__name__)


@dataclass
class ConsistencyEvaluation:
    """Everything `ConsistencyReward` measured on G candidates of V views.

    Fields:
        breakdown: `RewardBreakdown` with terms `depth` (r_D), `point` (r_P) and, with cameras, `pose` (r_T);
            `total` is their unweighted mean (the composite applies the paper's weights); `per_view` (G, V) the
            mean of each view's transformed depth and point confidence (VGGT trusts least the views that disagree
            with the rest, paper Sec. 4.1).
        depth_confidence, point_confidence: (G, V) per-view spatial means of the transformed confidence.
        raw_depth_confidence, raw_point_confidence: (G, V) per-view means of the raw confidence (>= 1).
        pose_error: per-pair relative-pose errors, fields (G, V-1); None without cameras.
    """

    breakdown: RewardBreakdown
    depth_confidence: torch.Tensor
    point_confidence: torch.Tensor
    raw_depth_confidence: torch.Tensor
    raw_point_confidence: torch.Tensor
    pose_error: RelativePoseError | None


class ConsistencyReward:
    """RL3DEdit's VGGT reward on a set of views (paper Eqs. 1-2).

    - r_D = (1/M) sum_m mean(f(conf_D^m)), r_P = (1/M) sum_m mean(f(conf_P^m)) (Eq. 1), f the confidence transform
      (`rewards.confidence`; default `inverse`, 1 - 1/c, which keeps r_D and r_P in [0, 1) like r_T and r_a).
    - r_T = exp(-(1/(M-1)) sum_m ||R_m^rel - R_m^rel*||_F^2 + ||t~_m^rel - t~_m^rel*||^2) (Eq. 2), with
      T_m^rel = T_{m+1} T_m^{-1} from VGGT's extrinsics and the reference from the known source cameras.

    VGGT runs once in inference mode on all candidates (B = G, or chunks of `batch_size`), views in the given
    order (view 0 defines VGGT's world frame; r_T is invariant to it).

    Args:
        vggt: a VGGT module (`rl3dedit.geometry.load_verifier`, `build_tiny_vggt`) mapping (B, S, 3, H, W) images
            to an output with `pose_enc`, `depth`, `depth_conf`, `world_points_conf`.
        confidence_transform: `inverse` (default), `raw` (paper-literal) or `log`.
        image_size: VGGT input width (multiple of 14; 518 for VGGT-1B).
        preprocess_mode: VGGT preprocessing, `crop` (VGGT's default) or `pad`.
        batch_size: candidates per VGGT call; None = all G at once.
    """

    term_names: tuple[str, ...] = VIEW_REWARD_TERMS["consistency"]
    needs_cameras: bool = False

    def __init__(
        self,
        vggt: torch.nn.Module,
        *,
        confidence_transform: ConfidenceTransformName = "inverse",
        image_size: int = 518,
        preprocess_mode: Literal["crop", "pad"] = "crop",
        batch_size: int | None = None,
    ) -> None:
        if confidence_transform not in CONFIDENCE_TRANSFORMS:
            raise ValueError(f"confidence_transform={confidence_transform!r}; choose one of "
                             f"{', '.join(CONFIDENCE_TRANSFORMS)}")
        if image_size <= 0 or image_size % 14:
            raise ValueError(f"image_size={image_size} must be a positive multiple of 14 (VGGT's patch size)")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1 or None")
        self.vggt = vggt.eval()
        self.confidence_transform: ConfidenceTransformName = confidence_transform
        self.image_size = image_size
        self.preprocess_mode = preprocess_mode
        self.batch_size = batch_size

    def evaluate(self, views: torch.Tensor, cameras: Cameras | None) -> ConsistencyEvaluation:
        """Score G candidates and keep the per-view and per-pair details.

        Args:
            views: (G, V, 3, H, W) in [0, 1].
            cameras: the V source cameras in view order (for r_T), or None to score confidence only.
        """
        check_views(views)
        g, v = views.shape[:2]
        check_cameras(self, cameras, v)
        run = run_verifier(self.vggt, views, image_size=self.image_size, preprocess_mode=self.preprocess_mode,
                           batch_size=self.batch_size)
        depth_view = transform_confidence(run.depth_conf, self.confidence_transform).mean(dim=(-1, -2))
        point_view = transform_confidence(run.point_conf, self.confidence_transform).mean(dim=(-1, -2))
        terms = {"depth": depth_view.mean(dim=1), "point": point_view.mean(dim=1)}
        pose_error = None
        if cameras is not None:
            pose_error = relative_pose_error(run.extrinsics, cameras.viewmats.to(run.extrinsics))
            terms["pose"] = torch.exp(-pose_error.total)
        total = torch.stack(list(terms.values())).mean(dim=0)
        logger.debug("consistency of %d candidates: %s", g, {k: t.tolist() for k, t in terms.items()})
        return ConsistencyEvaluation(
            breakdown=RewardBreakdown(total=total, terms=terms, per_view=(depth_view + point_view) / 2),
            depth_confidence=depth_view,
            point_confidence=point_view,
            raw_depth_confidence=run.depth_conf.mean(dim=(-1, -2)),
            raw_point_confidence=run.point_conf.mean(dim=(-1, -2)),
            pose_error=pose_error,
        )

    def score(self, views: torch.Tensor, cameras: Cameras | None) -> RewardBreakdown:
        """`RewardBreakdown` of G candidates (G,) with terms `depth`, `point` and (with cameras) `pose`."""
        return self.evaluate(views, cameras).breakdown

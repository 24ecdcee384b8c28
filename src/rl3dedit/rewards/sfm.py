"""SfM reward r_SfM (paper appendix S2.2): a rejected alternative to VGGT, kept for the ablation (Table 2, 4).

r_SfM = (N_reg / M) * exp(-e), with known (source) cameras. What this implementation does, per candidate:

1. SIFT keypoints and descriptors per view with pycolmap (CPU extractor, default COLMAP options).
2. Matches for every pair of views: mutual nearest neighbours in descriptor space that pass Lowe's ratio test.
3. Each match is triangulated with the two known cameras (linear DLT), then reprojected into both views.
   Matches in front of both cameras with reprojection error below `max_error_px` are inliers (the role of
   COLMAP's triangulation threshold, default 4 px).
4. A view is registered if it has at least `min_inliers` inlier observations; e is the mean reprojection error
   (px) of all inlier observations. No inliers at all gives r_SfM = 0.

This is the paper's definition with COLMAP's incremental mapper replaced by matching and triangulation against
the known poses, which is what "GT extrinsics used" leaves to do. As the paper reports, it is hacked by
textureless or blank outputs: few keypoints leave few, easily consistent matches.

Per view (which views break the set): min(1, n_v / min_inliers) * exp(-e_v), with n_v the view's inlier
observations and e_v their mean reprojection error; 0 for a view without inliers.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from rl3dedit.rewards.breakdown import RewardBreakdown, check_cameras, check_views
from rl3dedit.rewards.config import VIEW_REWARD_TERMS
from rl3dedit.scene import Cameras

__all__ = ["SfMReward"]

logger = logging.getLogger(__name__)


def _projection_matrices(cameras: Cameras) -> torch.Tensor:
    """(V, 3, 4) P = K [R | t] in float64."""
    return cameras.Ks.double() @ cameras.viewmats.double()[:, :3, :]


def _mutual_matches(desc_a: torch.Tensor, desc_b: torch.Tensor, ratio: float) -> torch.Tensor:
    """(K, 2) index pairs: mutual nearest neighbours whose best distance is < ratio * second best."""
    if len(desc_a) < 2 or len(desc_b) < 2:
        return torch.zeros(0, 2, dtype=torch.long)
    dist = torch.cdist(desc_a, desc_b)
    best2 = dist.topk(2, dim=1, largest=False)
    nn_ab = best2.indices[:, 0]
    nn_ba = dist.argmin(dim=0)
    keep = (nn_ba[nn_ab] == torch.arange(len(desc_a))) & (best2.values[:, 0] < ratio * best2.values[:, 1])
    index_a = keep.nonzero().flatten()
    return torch.stack([index_a, nn_ab[index_a]], dim=1)


def _triangulate(p_a: torch.Tensor, p_b: torch.Tensor, xy_a: torch.Tensor, xy_b: torch.Tensor) -> torch.Tensor:
    """Linear (DLT) triangulation of K matches (K, 2) with projection matrices (3, 4) -> (K, 3) world points."""
    rows = torch.stack([
        xy_a[:, :1] * p_a[2] - p_a[0], xy_a[:, 1:] * p_a[2] - p_a[1],
        xy_b[:, :1] * p_b[2] - p_b[0], xy_b[:, 1:] * p_b[2] - p_b[1],
    ], dim=1)  # (K, 4, 4)
    solution = torch.linalg.svd(rows).Vh[:, -1]
    w = solution[:, 3:]
    return solution[:, :3] / torch.where(w.abs() > 1e-12, w, torch.full_like(w, 1e-12))


def _reprojection(p: torch.Tensor, points: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) pixel reprojection errors and (K,) depths of world points under projection matrix p."""
    homog = torch.cat([points, torch.ones_like(points[:, :1])], dim=1) @ p.T
    depth = homog[:, 2]
    uv = homog[:, :2] / depth.clamp_min(1e-12)[:, None]
    return (uv - xy).norm(dim=1), depth


class SfMReward:
    """r_SfM with known cameras (see the module docstring). Needs pycolmap (imported on first use).

    Args:
        min_inliers: inlier observations a view needs to count as registered.
        max_error_px: inlier reprojection threshold in pixels.
        ratio: Lowe's ratio-test threshold.
    """

    term_names: tuple[str, ...] = VIEW_REWARD_TERMS["sfm"]
    needs_cameras: bool = True

    def __init__(self, *, min_inliers: int = 15, max_error_px: float = 4.0, ratio: float = 0.8) -> None:
        if min_inliers < 1 or max_error_px <= 0 or not 0 < ratio <= 1:
            raise ValueError(f"SfMReward needs min_inliers >= 1, max_error_px > 0 and 0 < ratio <= 1; got "
                             f"{min_inliers}, {max_error_px}, {ratio}")
        self.min_inliers = min_inliers
        self.max_error_px = max_error_px
        self.ratio = ratio
        self._extractor = None

    def _features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2) keypoint pixel coordinates (pixel centres at +0.5, COLMAP's convention) and (N, 128) descriptors."""
        if self._extractor is None:
            try:
                import pycolmap
            except ImportError as exc:
                raise ImportError("SfMReward needs pycolmap: pip install pycolmap") from exc
            self._extractor = pycolmap.FeatureExtractor.create(
                pycolmap.FeatureExtractionOptions(), device=pycolmap.Device.cpu)
        gray = (image.clamp(0, 1) * torch.tensor([0.299, 0.587, 0.114], device=image.device)[:, None, None]).sum(0)
        array = np.ascontiguousarray((gray * 255).round().to(torch.uint8).cpu().numpy())
        keypoints, descriptors = self._extractor.extract_from_uint8_array(array)
        xy = torch.tensor([[kp.x, kp.y] for kp in keypoints], dtype=torch.float64).reshape(-1, 2)
        return xy, torch.from_numpy(np.asarray(descriptors.data, dtype=np.float32)).reshape(-1, 128)

    def _score_one(self, views: torch.Tensor, projections: torch.Tensor) -> tuple[float, float, int, torch.Tensor]:
        """(r_SfM, mean error px, registered views, (V,) per-view scores) for one candidate's views (V, 3, H, W)."""
        v = views.shape[0]
        features = [self._features(view) for view in views]
        observations = torch.zeros(v, dtype=torch.long)
        error_sums = torch.zeros(v, dtype=torch.float64)
        errors: list[torch.Tensor] = []
        for a in range(v):
            for b in range(a + 1, v):
                pairs = _mutual_matches(features[a][1], features[b][1], self.ratio)
                if len(pairs) == 0:
                    continue
                xy_a, xy_b = features[a][0][pairs[:, 0]], features[b][0][pairs[:, 1]]
                points = _triangulate(projections[a], projections[b], xy_a, xy_b)
                err_a, depth_a = _reprojection(projections[a], points, xy_a)
                err_b, depth_b = _reprojection(projections[b], points, xy_b)
                inlier = (depth_a > 0) & (depth_b > 0) & (err_a < self.max_error_px) & (err_b < self.max_error_px)
                count = int(inlier.sum())
                observations[a] += count
                observations[b] += count
                error_sums[a] += err_a[inlier].sum()
                error_sums[b] += err_b[inlier].sum()
                errors.extend([err_a[inlier], err_b[inlier]])
        all_errors = torch.cat(errors) if errors else torch.zeros(0, dtype=torch.float64)
        registered = int((observations >= self.min_inliers).sum())
        seen = observations > 0
        per_view = torch.where(
            seen, (observations / self.min_inliers).clamp(max=1) * torch.exp(-error_sums / observations.clamp_min(1)),
            torch.zeros(v, dtype=torch.float64))
        if len(all_errors) == 0:
            return 0.0, float("inf"), registered, per_view
        mean_error = float(all_errors.mean())
        return registered / v * float(np.exp(-mean_error)), mean_error, registered, per_view

    def score(self, views: torch.Tensor, cameras: Cameras | None) -> RewardBreakdown:
        """r_SfM for G candidates: views (G, V, 3, H, W) in [0, 1], the V known cameras (rescaled to H x W)."""
        check_views(views)
        g, v, _, h, w = views.shape
        check_cameras(self, cameras, v)
        assert cameras is not None
        projections = _projection_matrices(cameras.rescaled(w, h).to("cpu"))
        values, per_view = [], []
        for i in range(g):
            reward, error, registered, view_scores = self._score_one(views[i].detach().float().cpu(), projections)
            logger.debug("candidate %d: r_SfM %.4f, %d/%d views registered, mean error %.3f px",
                         i, reward, registered, v, error)
            values.append(reward)
            per_view.append(view_scores)
        r = torch.tensor(values, dtype=torch.float32, device=views.device)
        return RewardBreakdown(total=r, terms={"sfm": r}, per_view=torch.stack(per_view).float().to(views.device))

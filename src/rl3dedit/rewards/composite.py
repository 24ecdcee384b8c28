"""The training reward (paper Eq. 4) with the anchor substitution protocol (paper Sec. 3.3)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from rl3dedit.rewards.anchor import AnchorReward
from rl3dedit.rewards.breakdown import RewardBreakdown, ViewSetReward, check_views
from rl3dedit.rewards.config import check_weights, default_weights
from rl3dedit.scene import Cameras

__all__ = ["CompositeReward", "draw_anchor_index"]

logger = logging.getLogger(__name__)


def draw_anchor_index(generator: torch.Generator, num_views: int) -> int:
    """Draw the anchor a uniformly from {0, ..., num_views - 1} (paper Sec. 3.3).

    Draw once per condition (training sample) and pass the same index for the whole GRPO group (step 3).
    """
    if num_views < 1:
        raise ValueError(f"num_views={num_views} must be >= 1")
    return int(torch.randint(num_views, (1,), generator=generator))


class CompositeReward:
    """R = sum_k w_k r_k over the view-set reward's terms and the anchor reward (paper Eq. 4).

    Protocol per call (paper Sec. 3.3, docs/references.md §1): in every candidate, view `anchor_index` is replaced by the precomputed
    single-view edit `anchor_reference` before the view-set reward (VGGT) sees the set; r_a compares each
    candidate's own generated anchor view (before substitution) with the reference. One `anchor_index` serves
    the whole group, so members are compared fairly.

    Failures never stop a training step: if the batched view-set call raises, candidates are rescored one by one;
    a candidate whose scoring raises or yields a non-finite term receives the group minimum of each term and of
    the total, with a logged warning, and is flagged in `RewardBreakdown.failed`. If every candidate fails a
    `RuntimeError` is raised.

    Args:
        view_reward: any view-set reward (`ConsistencyReward`, the paper's; `SfMReward` / `WarpReward`).
        anchor: the `AnchorReward`.
        weights: non-negative weight per term; keys must be exactly the view-set reward's `term_names` and `anchor`;
            None = equal weights (`rewards.config.default_weights`: paper Eq. 4's 0.25 each for VGGT).
    """

    def __init__(
        self, view_reward: ViewSetReward, anchor: AnchorReward, weights: Mapping[str, float] | None = None
    ) -> None:
        names = (*view_reward.term_names, *anchor.term_names)
        self.weights = check_weights(default_weights(names) if weights is None else weights, names,
                                     f"weights of {type(view_reward).__name__} + the anchor reward")
        self.view_reward = view_reward
        self.anchor = anchor

    @property
    def term_names(self) -> tuple[str, ...]:
        return (*self.view_reward.term_names, *self.anchor.term_names)

    def score(
        self,
        views: torch.Tensor,
        cameras: Cameras,
        *,
        anchor_index: int,
        anchor_reference: torch.Tensor,
    ) -> RewardBreakdown:
        """Score a GRPO group.

        Args:
            views: (G, V, 3, H, W) generated views in [0, 1].
            cameras: the V source cameras (reference poses for r_T).
            anchor_index: a in [0, V), shared by the group (`draw_anchor_index`).
            anchor_reference: (3, H, W) single-view edit of view a, in [0, 1].

        Returns:
            `RewardBreakdown` with total (G,), every term (G,) and `failed` (G,) bool.
        """
        check_views(views)
        g, v = views.shape[:2]
        if not 0 <= anchor_index < v:
            raise ValueError(f"anchor_index={anchor_index} is outside [0, {v}) for {v} views")
        if anchor_reference.shape != views.shape[2:]:
            raise ValueError(f"anchor_reference has shape {tuple(anchor_reference.shape)}, expected "
                             f"{tuple(views.shape[2:])} (one view)")
        substituted = views.clone()
        substituted[:, anchor_index] = anchor_reference.to(views)
        terms = self._view_terms(substituted, cameras)
        terms.update(self._anchor_terms(views[:, anchor_index], anchor_reference))
        return self._combine(terms, g)

    def _view_terms(self, views: torch.Tensor, cameras: Cameras) -> dict[str, torch.Tensor]:
        try:
            return dict(self.view_reward.score(views, cameras).terms)
        # Any verifier error (bad candidate, numerical failure) must not kill the step: isolate it per candidate.
        except Exception as exc:  # noqa: BLE001
            logger.warning("batched view-set scoring failed (%s: %s); rescoring candidates one by one",
                           type(exc).__name__, exc)
        rows: list[dict[str, torch.Tensor] | None] = []
        for i in range(views.shape[0]):
            try:
                rows.append({k: t[0] for k, t in self.view_reward.score(views[i:i + 1], cameras).terms.items()})
            except Exception as exc:  # noqa: BLE001
                logger.warning("candidate %d: view-set scoring failed (%s: %s)", i, type(exc).__name__, exc)
                rows.append(None)
        nan = torch.tensor(float("nan"), device=views.device)
        return {name: torch.stack([row[name] if row is not None else nan for row in rows]).to(views.device)
                for name in self.view_reward.term_names}

    def _anchor_terms(self, anchors: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        try:
            return dict(self.anchor.score(anchors, reference).terms)
        except Exception as exc:  # noqa: BLE001
            logger.warning("anchor scoring failed (%s: %s); marking every candidate's r_a as failed",
                           type(exc).__name__, exc)
            return {name: torch.full((anchors.shape[0],), float("nan"), device=anchors.device)
                    for name in self.anchor.term_names}

    def _combine(self, terms: dict[str, torch.Tensor], g: int) -> RewardBreakdown:
        missing = set(self.weights) - set(terms)
        if missing:
            raise RuntimeError(f"rewards returned terms {sorted(terms)}, missing weighted terms {sorted(missing)}")
        stacked = torch.stack([terms[name].float() for name in self.weights])  # (K, G)
        failed = ~torch.isfinite(stacked).all(dim=0)
        if bool(failed.all()):
            raise RuntimeError(f"all {g} candidates failed to score (non-finite rewards or verifier errors); "
                               f"see the warnings above")
        weight = torch.tensor(list(self.weights.values()), dtype=stacked.dtype, device=stacked.device)
        total = (weight[:, None] * stacked).sum(dim=0)
        if bool(failed.any()):
            index = failed.nonzero().flatten().tolist()
            logger.warning("candidates %s failed to score; they get the group minimum reward", index)
            total = torch.where(failed, total[~failed].min(), total)
            stacked = torch.where(failed[None], stacked[:, ~failed].min(dim=1, keepdim=True).values, stacked)
        named = {name: stacked[k] for k, name in enumerate(self.weights)}
        return RewardBreakdown(total=total, terms=named, failed=failed)

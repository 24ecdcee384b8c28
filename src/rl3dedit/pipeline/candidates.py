"""Best-of-N editing: edit the same views with N seeds, score each candidate with a view-set reward, keep the best.

The verifier the paper trains with (VGGT, or the weight-free warp and SfM checks) becomes an inference-time choice:
candidate i uses seed `seeds[i]` (candidate 0 is the single edit's seed, so N = 1 is the plain edit job), and all
N edited view sets are scored in one batched reward call. A consistent but unedited candidate would score well on
consistency alone, so selection can add the anchor term r_a (paper Eq. 3: closeness of the candidate's anchor view
to a single-view edit of that view): selection score = view-set total + anchor_weight * r_a.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rl3dedit.rewards import AnchorReward, ViewSetReward
from rl3dedit.scene import Cameras

__all__ = ["AnchorCheck", "Candidate", "Selection", "candidate_seeds", "run_best_of_n", "select_best",
           "write_candidates"]

logger = logging.getLogger(__name__)

EditFn = Callable[[list[int]], list[tuple[torch.Tensor, list[torch.Tensor]]]]
"""edit(seeds) -> per seed (edited views (V, 3, H, W) in [0, 1], the edited grid images (3, GH, GW) they came from);
the seeds of one call may share a transformer batch."""


def candidate_seeds(seed: int, count: int) -> list[int]:
    """Seeds of `count` candidates: the single edit's `seed` first, then seed + 1, seed + 2, ..."""
    if count < 1:
        raise ValueError(f"the number of candidates must be >= 1, got {count}")
    return [seed + i for i in range(count)]


@dataclass
class AnchorCheck:
    """The anchor term of the selection: `reward` (an `AnchorReward`) compares each candidate's view `index`
    with `reference` (3, H, W), a single-view edit of that view, weighted by `weight` (> 0)."""

    reward: AnchorReward
    index: int
    reference: torch.Tensor
    weight: float


@dataclass
class Candidate:
    """One edited view set.

    Fields:
        index, seed: its place among the candidates and its sampling seed.
        views: (V, 3, H, W) edited views in [0, 1]; grids: the edited grid images.
        terms: the view-set reward's terms, its `total`, and `anchor` (r_a) when the anchor is weighed.
        per_view: (V,) the reward's per-view scores (higher = more consistent).
        score: what selection compares (total + anchor weight * r_a).
        seconds: wall time of its edit.
    """

    index: int
    seed: int
    views: torch.Tensor
    grids: list[torch.Tensor]
    terms: dict[str, float] = field(default_factory=dict)
    per_view: list[float] = field(default_factory=list)
    score: float = float("nan")
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"index": self.index, "seed": self.seed, "score": self.score, "terms": self.terms,
                "per_view": self.per_view, "edit_s": self.seconds}


@dataclass
class Selection:
    """All candidates and the one kept (`best`), with the reason in words."""

    candidates: list[Candidate]
    best: int
    reason: str
    reward: str
    anchor_weight: float
    score_s: float

    @property
    def kept(self) -> Candidate:
        return self.candidates[self.best]

    def to_json(self) -> dict:
        """What metrics.json records: every candidate (seed, terms, score, grid files) and the choice."""
        edit_s = [c.seconds for c in self.candidates]
        return {
            "count": len(self.candidates),
            "reward": self.reward,
            "anchor_weight": self.anchor_weight,
            "kept": self.best,
            "kept_seed": self.kept.seed,
            "reason": self.reason,
            "candidates": [c.to_json() | {"grids": [f"candidates/{name}" for name in _grid_names(c)]}
                           for c in self.candidates],
            "score_s": self.score_s,
            "edit_s_per_candidate": sum(edit_s) / len(edit_s),
        }


def select_best(
    edit: EditFn,
    seeds: list[int],
    cameras: Cameras,
    reward: ViewSetReward,
    *,
    reward_name: str,
    anchor: AnchorCheck | None = None,
    batch_size: int = 1,
) -> Selection:
    """Edit the seeds `batch_size` at a time, score all candidates in one batched reward call, keep the highest
    selection score.

    A candidate whose reward is not finite (e.g. the warp check found no overlap) can only be kept if every
    candidate's is; ties keep the earlier candidate (the single edit's seed first). Each candidate's `seconds` is
    its share of its batch's edit time.
    """
    if not seeds:
        raise ValueError("need at least one seed")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    candidates: list[Candidate] = []
    for first in range(0, len(seeds), batch_size):
        chunk = seeds[first:first + batch_size]
        start = time.perf_counter()
        results = edit(chunk)
        seconds = (time.perf_counter() - start) / len(chunk)
        for seed, (views, grids) in zip(chunk, results, strict=True):
            candidates.append(Candidate(index=len(candidates), seed=seed, views=views, grids=grids, seconds=seconds))
        logger.info("candidates %d-%d of %d (seeds %s) edited in %.1f s each", first + 1, first + len(chunk),
                    len(seeds), chunk, seconds)
    start = time.perf_counter()
    stack = torch.stack([c.views for c in candidates])
    breakdown = reward.score(stack, cameras)
    r_a = None
    if anchor is not None:
        r_a = anchor.reward.score(stack[:, anchor.index], anchor.reference.to(stack)).total
    score_s = time.perf_counter() - start
    for i, c in enumerate(candidates):
        c.terms = breakdown.as_floats(i)
        c.per_view = breakdown.per_view[i].tolist() if breakdown.per_view is not None else []
        c.score = c.terms["total"]
        if anchor is not None and r_a is not None:
            c.terms["anchor"] = float(r_a[i])
            c.score += anchor.weight * c.terms["anchor"]
    finite = [c for c in candidates if c.score == c.score]
    pool = finite or candidates
    best = max(pool, key=lambda c: (c.score, -c.index)).index
    reason = _reason(candidates, best, reward_name, anchor)
    logger.info("%s", reason)
    return Selection(candidates=candidates, best=best, reason=reason, reward=reward_name,
                     anchor_weight=anchor.weight if anchor is not None else 0.0, score_s=score_s)


def run_best_of_n(
    config,
    edit: EditFn,
    seed: int,
    cameras: Cameras,
    reward: ViewSetReward,
    *,
    single_view_edit: Callable[[torch.Tensor], torch.Tensor] | None = None,
    source_views: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> Selection:
    """Best-of-N as the edit job runs it: `config.editor.candidates` seeds from `seed`, edited
    `config.editor.candidate_batch_size` at a time, scored with `reward` (built
    from `config.rewards.view_reward`), plus the anchor term when `config.editor.candidate_anchor_weight` > 0: the
    middle source view is edited alone by `single_view_edit` ((3, H, W) -> (3, H, W)) and compared through the
    configured LPIPS (`rewards.build_reward("anchor", config)`)."""
    anchor = None
    weight = config.editor.candidate_anchor_weight
    if weight > 0:
        if single_view_edit is None or source_views is None:
            raise ValueError("editor.candidate_anchor_weight > 0 needs the source views and a single-view edit")
        from rl3dedit.rewards import build_reward

        index = len(source_views) // 2
        reference = single_view_edit(source_views[index]).clamp(0, 1)
        anchor = AnchorCheck(build_reward("anchor", config, device=device), index, reference, weight)
    return select_best(edit, candidate_seeds(seed, config.editor.candidates), cameras, reward,
                       reward_name=config.rewards.view_reward, anchor=anchor,
                       batch_size=config.editor.candidate_batch_size)


def _reason(candidates: list[Candidate], best: int, reward_name: str, anchor: AnchorCheck | None) -> str:
    kept = candidates[best]
    formula = f"{reward_name} total" + (f" + {anchor.weight:g} x anchor r_a" if anchor is not None else "")
    others = ", ".join(f"#{c.index} {c.score:.4f}" for c in candidates if c.index != best)
    return (f"kept candidate #{best} (seed {kept.seed}): highest {formula} = {kept.score:.4f} "
            f"of {len(candidates)} (others: {others or 'none'})")


def _grid_names(candidate: Candidate) -> list[str]:
    if len(candidate.grids) == 1:
        return [f"candidate_{candidate.index:02d}_grid.png"]
    return [f"candidate_{candidate.index:02d}_grid_{g:02d}.png" for g in range(len(candidate.grids))]


def write_candidates(selection: Selection, folder: Path) -> None:
    """Each candidate's edited grid image(s) into `folder` (named as `Selection.to_json` records them)."""
    from rl3dedit.views import save_image

    folder.mkdir(parents=True, exist_ok=True)
    for candidate in selection.candidates:
        for grid, name in zip(candidate.grids, _grid_names(candidate)):
            save_image(grid, folder / name)

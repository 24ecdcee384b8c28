"""Per-case results, the metric catalogue, and aggregation per split and overall.

A metric of a case is a `MetricValue`: a finite number, or *not computed* with a reason (no judge endpoint, metric
switched off, model missing, degenerate input). Aggregates take the mean over the cases where the metric was
computed, report that count, and list the reasons of the others; a not-computed value never enters a mean.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from rl3dedit.files import json_safe


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is shown: key, column title, which direction is better, paper Table 1 column or extra."""

    key: str
    title: str
    better: Literal["higher", "lower"]
    table1: bool
    description: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("viescore", "VIEScore", "higher", True, "VIEScore O = sqrt(SC * PQ), 0-10, GPT-4.1-style judge"),
    MetricSpec("clip_dir", "CLIP-dir", "higher", True, "cos(dE_img, dE_txt) on novel views"),
    MetricSpec("ph_loss", "Ph-Loss", "lower", True, "photometric reprojection loss, VGGT depth, adjacent views"),
    MetricSpec("time_s", "avg. time", "lower", True, "edit wall time per case (s), base 3DGS excluded"),
    MetricSpec("viescore_sc", "VIE-SC", "higher", False, "VIEScore semantic consistency, 0-10"),
    MetricSpec("viescore_pq", "VIE-PQ", "higher", False, "VIEScore perceptual quality, 0-10"),
    MetricSpec("clip_t", "CLIP-T", "higher", False, "cos(edited view, target caption)"),
    MetricSpec("clip_image", "CLIP-I", "higher", False, "cos(edited view, source view)"),
    MetricSpec("clip_consistency", "CLIP-cons", "higher", False,
               "IN2N CLIP direction consistency between consecutive novel views"),
    MetricSpec("ph_loss_rendered_depth", "Ph-Loss (3DGS depth)", "lower", False, "Ph-Loss with source 3DGS depth"),
    MetricSpec("vggt_total", "VGGT", "higher", False, "VGGT consistency (reward terms, equal weights)"),
    MetricSpec("vggt_depth", "VGGT r_D", "higher", False, "mean VGGT depth confidence"),
    MetricSpec("vggt_point", "VGGT r_P", "higher", False, "mean VGGT point confidence"),
    MetricSpec("vggt_pose", "VGGT r_T", "higher", False, "relative-pose agreement with the known cameras"),
    MetricSpec("oracle_novel_psnr", "oracle PSNR", "higher", False,
               "oracle cases: PSNR (dB) vs the oracle's ground truth on every camera not edited"),
    MetricSpec("oracle_novel_ssim", "oracle SSIM", "higher", False, "oracle cases: SSIM on the same cameras"),
    MetricSpec("oracle_train_psnr", "oracle train PSNR", "higher", False,
               "oracle cases: PSNR (dB) of the refit on the M edited views"),
    MetricSpec("oracle_preservation_psnr", "oracle preservation", "higher", False,
               "oracle cases: PSNR (dB) vs the source render outside the edit's screen mask, unedited cameras"),
)
METRIC_KEYS: tuple[str, ...] = tuple(spec.key for spec in METRICS)
ORACLE_METRIC_KEYS: tuple[str, ...] = tuple(key for key in METRIC_KEYS if key.startswith("oracle_"))


@dataclass
class MetricValue:
    """A number, or None with the reason it was not computed."""

    value: float | None
    not_computed: str | None = None

    def __post_init__(self) -> None:
        if self.value is not None and not math.isfinite(self.value):
            self.not_computed = self.not_computed or f"non-finite value {self.value}"
            self.value = None
        if self.value is None and not self.not_computed:
            raise ValueError("a MetricValue without a value needs a not_computed reason")

    @classmethod
    def skipped(cls, reason: str) -> "MetricValue":
        return cls(None, reason)


@dataclass
class CaseResult:
    """The outcome of one case (also the content of `cases/<id>/result.json`).

    Fields:
        case_id, split, instruction: from the cases file.
        status: `ok`, or `error` (then `error` and `traceback` say why; metrics may be partial).
        metrics: METRIC_KEYS -> MetricValue.
        details: per-view arrays, VGGT terms of the source renders, judge answers, timings, eval cameras.
        files: artefact name -> path relative to the eval output folder (views, grids, turntable).
    """

    case_id: str
    split: str
    instruction: str
    status: Literal["ok", "error"]
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None

    def to_json(self) -> dict:
        return json_safe(asdict(self))

    @classmethod
    def from_json(cls, data: dict) -> "CaseResult":
        metrics = {k: MetricValue(**v) for k, v in data.get("metrics", {}).items()}
        return cls(**{**data, "metrics": metrics})


@dataclass
class MetricSummary:
    """One metric over a group of cases: mean over computed cases, their count, and why the rest are missing."""

    mean: float | None
    count: int
    not_computed: int
    reasons: list[str]


@dataclass
class GroupSummary:
    """All metrics over a group (a split, or `overall`); `stage_times_s` is the mean seconds per edit stage over
    the cases that recorded timings."""

    num_cases: int
    num_failed: int
    metrics: dict[str, MetricSummary]
    stage_times_s: dict[str, float] = field(default_factory=dict)


def summarise(results: list[CaseResult]) -> GroupSummary:
    """Means and counts of every metric over `results` (failed cases count as not computed for their metrics)."""
    metrics = {}
    for key in METRIC_KEYS:
        values, reasons = [], []
        for result in results:
            metric = result.metrics.get(key)
            if metric is not None and metric.value is not None:
                values.append(metric.value)
            elif metric is not None:
                reasons.append(str(metric.not_computed))
            else:
                reasons.append("case failed" if result.status != "ok" else "not recorded")
        unique = sorted(set(reasons))
        mean = sum(values) / len(values) if values else None
        metrics[key] = MetricSummary(mean=mean, count=len(values), not_computed=len(reasons), reasons=unique)
    stages: dict[str, list[float]] = {}
    for result in results:
        for stage, seconds in result.details.get("timings_s", {}).items():
            stages.setdefault(stage, []).append(float(seconds))
    stage_means = {stage: sum(values) / len(values) for stage, values in stages.items()}
    failed = sum(result.status != "ok" for result in results)
    return GroupSummary(num_cases=len(results), num_failed=failed, metrics=metrics, stage_times_s=stage_means)


def aggregate(results: list[CaseResult], splits: tuple[str, ...]) -> dict[str, GroupSummary]:
    """`overall` plus one summary per split that has cases, in the order of `splits`."""
    groups = {"overall": summarise(results)}
    for split in splits:
        members = [r for r in results if r.split == split]
        if members:
            groups[split] = summarise(members)
    return groups

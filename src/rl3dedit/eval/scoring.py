"""Every metric of one case, from its novel-view renders before and after the edit.

`load_metric_models` loads the scorers once per evaluation (CLIP, VGGT, the VIEScore judge) and fails fast, naming
the setting to change, when weights are missing; `score_case` turns one case's renders into `MetricValue`s plus
per-view details. Which families run is `eval.metrics`; a family switched off is reported as not computed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rl3dedit.chat import ChatClient, Transport, urllib_transport
from rl3dedit.eval.cases import EvalCase
from rl3dedit.eval.clip import ClipScorer, load_clip
from rl3dedit.eval.config import ALL_METRICS
from rl3dedit.eval.photometric import PhLoss, ph_loss_rendered_depth, ph_loss_vggt
from rl3dedit.eval.results import ORACLE_METRIC_KEYS, MetricValue
from rl3dedit.eval.viescore import (
    DEFAULT_PROMPTS,
    VIEScoreJudge,
    judge_endpoint_from_env,
    judged_view_indices,
    load_viescore_prompts,
)
from rl3dedit.scene import Cameras

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig
    from rl3dedit.rewards import ConsistencyReward

logger = logging.getLogger(__name__)


@dataclass
class CaseViews:
    """What one case is scored on.

    Fields:
        cameras: (E) evaluation cameras at the render size H x W (novel views, in path order).
        source_views: (E, 3, H, W) renders of the source 3DGS, [0, 1].
        edited_views: (E, 3, H, W) renders of the edited 3DGS (or another method's renders), [0, 1].
        source_depth: (E, 1, H, W) source 3DGS depth in scene units, or None.
        timings: seconds per edit stage, or None when unknown (another method without timings).
    """

    cameras: Cameras
    source_views: torch.Tensor
    edited_views: torch.Tensor
    source_depth: torch.Tensor | None
    timings: dict[str, float] | None


@dataclass
class MetricModels:
    """The scorers shared by all cases; a None scorer has its reason in `off`."""

    clip: ClipScorer | None
    vggt: torch.nn.Module | None
    consistency: ConsistencyReward | None
    judge: VIEScoreJudge | None
    off: dict[str, str] = field(default_factory=dict)


def load_metric_models(
    config: RunConfig,
    device: torch.device,
    *,
    judge_transport: Transport | None = None,
    env: Mapping[str, str] | None = None,
) -> MetricModels:
    """Load the models the enabled metrics need. Missing CLIP or VGGT weights raise with the setting to change."""
    enabled = set(config.eval.metrics)
    off = {name: "switched off in eval.metrics" for name in ALL_METRICS if name not in enabled}
    clip = load_clip(config.eval.clip_model, device, config.eval.clip_preprocess) if "clip" in enabled else None
    vggt = consistency = None
    if enabled & {"ph_loss", "vggt"}:
        from rl3dedit.geometry.vggt import load_verifier

        try:
            vggt = load_verifier(config.verifier, device)
        except (FileNotFoundError, OSError) as exc:
            raise FileNotFoundError(
                f"VGGT weights for Ph-Loss / VGGT consistency could not be loaded ({exc}). Set verifier.model "
                "(--verifier-model) to local VGGT weights, or drop `ph_loss` and `vggt` from eval.metrics."
            ) from exc
        if "vggt" in enabled:
            from rl3dedit.rewards import build_reward

            # the same builder as training: rewards.confidence_transform and verifier.* are honoured
            consistency = build_reward("consistency", config, device=device, vggt=vggt)
    judge = None
    if "viescore" in enabled:
        endpoint = judge_endpoint_from_env(config.eval.judge_model, env)
        prompts = load_viescore_prompts(config.eval.judge_prompts) if config.eval.judge_prompts else DEFAULT_PROMPTS
        if endpoint is None:
            off["viescore"] = ("no judge endpoint: set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server "
                               "(rl3dedit.chat)")
        else:
            client = ChatClient(endpoint, timeout_s=config.eval.judge_timeout_s,
                                transport=judge_transport or urllib_transport)
            judge = VIEScoreJudge(client, image_size=config.eval.judge_image_size, prompts=prompts)
            logger.info("VIEScore judge: %s at %s, prompts %s", endpoint.model, endpoint.base_url, prompts.source)
    return MetricModels(clip=clip, vggt=vggt, consistency=consistency, judge=judge, off=off)


@dataclass
class CaseScores:
    """Metric values of one case (keys of `results.METRICS`) and per-view details for results.json."""

    metrics: dict[str, MetricValue]
    details: dict


def _ph_value(result: PhLoss) -> MetricValue:
    if math.isnan(result.mean):
        return MetricValue.skipped("no pixel of any view pair passed the depth-agreement mask")
    return MetricValue(result.mean)


def _ph_details(result: PhLoss) -> dict:
    return {
        "per_pair": result.per_pair.tolist(), "valid_fraction": result.valid_fraction.tolist(),
        "depth_scale": result.depth_scale,
    }


def _score_clip(case: EvalCase, views: CaseViews, clip: ClipScorer) -> CaseScores:
    scores = clip.score(
        views.source_views, views.edited_views, source_caption=case.source_caption, target_caption=case.target_caption
    )
    metrics = {
        "clip_t": MetricValue(float(scores.clip_t.mean())),
        "clip_dir": MetricValue(float(scores.clip_dir.mean())),
        "clip_image": MetricValue(float(scores.clip_image.mean())),
        "clip_consistency": (
            MetricValue(float(scores.clip_consistency.mean())) if scores.clip_consistency.numel()
            else MetricValue.skipped("needs at least 2 evaluation views")
        ),
    }
    details = {
        "clip_model": clip.name, "clip_preprocess": clip.preprocess, "clip_t_per_view": scores.clip_t.tolist(),
        "clip_dir_per_view": scores.clip_dir.tolist(), "clip_t_source_mean": float(scores.clip_t_source.mean()),
    }
    return CaseScores(metrics, details)


def _score_ph_loss(views: CaseViews, models: MetricModels, config: RunConfig) -> CaseScores:
    kwargs = {"image_size": config.verifier.image_size, "depth_rel_threshold": config.eval.ph_depth_rel_threshold}
    edited = ph_loss_vggt(views.edited_views, views.cameras, models.vggt, **kwargs)
    source = ph_loss_vggt(views.source_views, views.cameras, models.vggt, **kwargs)
    return CaseScores(
        {"ph_loss": _ph_value(edited)},
        {"ph_loss": _ph_details(edited), "ph_loss_source_mean": source.mean},
    )


def _score_rendered_depth(views: CaseViews, config: RunConfig) -> CaseScores:
    if views.source_depth is None:
        return CaseScores({"ph_loss_rendered_depth": MetricValue.skipped("no source 3DGS depth")}, {})
    threshold = config.eval.ph_depth_rel_threshold
    edited = ph_loss_rendered_depth(views.edited_views, views.source_depth, views.cameras,
                                    depth_rel_threshold=threshold)
    source = ph_loss_rendered_depth(views.source_views, views.source_depth, views.cameras,
                                    depth_rel_threshold=threshold)
    return CaseScores(
        {"ph_loss_rendered_depth": _ph_value(edited)},
        {"ph_loss_rendered_depth": _ph_details(edited), "ph_loss_rendered_depth_source_mean": source.mean},
    )


def _score_vggt(views: CaseViews, consistency: ConsistencyReward) -> CaseScores:
    with torch.no_grad():
        stack = torch.stack([views.edited_views, views.source_views])  # (2, E, 3, H, W): edited, source
        breakdown = consistency.score(stack, views.cameras)
    metrics = {"vggt_total": MetricValue(float(breakdown.total[0]))}
    for term in ("depth", "point", "pose"):
        if term in breakdown.terms:
            metrics[f"vggt_{term}"] = MetricValue(float(breakdown.terms[term][0]))
    source = {"total": float(breakdown.total[1])} | {k: float(v[1]) for k, v in breakdown.terms.items()}
    return CaseScores(metrics, {"vggt_source": source})


def _score_viescore(case: EvalCase, views: CaseViews, judge: VIEScoreJudge, count: int) -> CaseScores:
    indices = judged_view_indices(views.edited_views.shape[0], count)
    result = judge.judge(views.source_views.cpu(), views.edited_views.cpu(), case.instruction, indices)
    if result.overall is None:
        reason = result.not_computed or "no judgement"
        metrics = {k: MetricValue.skipped(reason) for k in ("viescore", "viescore_sc", "viescore_pq")}
    else:
        metrics = {
            "viescore": MetricValue(result.overall), "viescore_sc": MetricValue(result.sc),
            "viescore_pq": MetricValue(result.pq),
        }
    details = {
        "judge_model": result.judge_model, "judge_prompts": judge.prompts.source, "judged_views": result.view_indices,
        "errors": result.errors,
        "views": [vars(view) for view in result.views],
    }
    return CaseScores(metrics, {"viescore": details})


def score_case(case: EvalCase, views: CaseViews, models: MetricModels, config: RunConfig) -> CaseScores:
    """All enabled metrics for one case; disabled or impossible ones are `MetricValue.skipped(reason)`."""
    if views.source_views.shape != views.edited_views.shape:
        raise ValueError(
            f"case {case.id!r}: source renders {tuple(views.source_views.shape)} and edited renders "
            f"{tuple(views.edited_views.shape)} differ"
        )
    metrics: dict[str, MetricValue] = {}
    details: dict = {}
    off = models.off

    def skip(keys: tuple[str, ...], reason: str) -> None:
        metrics.update({key: MetricValue.skipped(reason) for key in keys})

    parts: list[CaseScores] = []
    if models.clip is not None:
        parts.append(_score_clip(case, views, models.clip))
    else:
        skip(("clip_t", "clip_dir", "clip_image", "clip_consistency"), off.get("clip", "no CLIP model"))
    if models.vggt is not None and "ph_loss" not in off:
        parts.append(_score_ph_loss(views, models, config))
    else:
        skip(("ph_loss",), off.get("ph_loss", "no VGGT model"))
    if "ph_loss_rendered_depth" not in off:
        parts.append(_score_rendered_depth(views, config))
    else:
        skip(("ph_loss_rendered_depth",), off["ph_loss_rendered_depth"])
    if models.consistency is not None:
        parts.append(_score_vggt(views, models.consistency))
    else:
        skip(("vggt_total", "vggt_depth", "vggt_point", "vggt_pose"), off.get("vggt", "no VGGT model"))
    if models.judge is not None:
        parts.append(_score_viescore(case, views, models.judge, config.eval.judge_views))
    else:
        reason = off.get("viescore", "no judge")
        skip(("viescore", "viescore_sc", "viescore_pq"), reason)
        details["viescore"] = {"judge_model": None, "not_computed": reason}
    if "time" in off:
        skip(("time_s",), off["time"])
    elif views.timings:
        metrics["time_s"] = MetricValue(float(sum(views.timings.values())))
        details["timings_s"] = dict(views.timings)
    else:
        skip(("time_s",), "no timings recorded for this method")
    # Ground truth exists only for oracle cases; the runner puts their values over these.
    skip(ORACLE_METRIC_KEYS, "oracle cases only")
    for part in parts:
        metrics.update(part.metrics)
        details.update(part.details)
    return CaseScores(metrics, details)


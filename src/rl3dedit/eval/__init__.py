"""Measuring edits: cases files, CLIP-T / CLIP-dir, Ph-Loss, VGGT consistency, VIEScore, timing; the benchmark
runner behind `rl3dedit eval` and its table and HTML report."""

from rl3dedit.eval.cases import (
    DATA_ROOT_ENV,
    SPLITS,
    CaseSet,
    EvalCameras,
    EvalCase,
    load_cases,
    resolve_eval_cameras,
)
from rl3dedit.eval.clip import (
    ClipScorer,
    ClipScores,
    build_tiny_clip,
    clip_direction_consistency,
    clip_directional_similarity,
    clip_preprocess,
    clip_text_image_similarity,
    load_clip,
)
from rl3dedit.eval.config import ALL_METRICS, EvalConfig
from rl3dedit.eval.photometric import PhLoss, ph_loss_rendered_depth, ph_loss_vggt
from rl3dedit.eval.results import METRICS, CaseResult, GroupSummary, MetricSpec, MetricSummary, MetricValue, aggregate
from rl3dedit.eval.runner import EvalRun, export_eval_cameras, run_eval
from rl3dedit.eval.scoring import CaseScores, CaseViews, MetricModels, load_metric_models, score_case
from rl3dedit.eval.viescore import (
    JudgeAnswer,
    JudgeAnswerError,
    JudgeEndpoint,
    VIEScoreJudge,
    VIEScoreResult,
    ViewJudgement,
    judge_endpoint_from_env,
    parse_judge_answer,
    view_judgement,
)

__all__ = [
    "ALL_METRICS", "DATA_ROOT_ENV", "METRICS", "SPLITS", "CaseResult", "CaseScores", "CaseSet", "CaseViews",
    "ClipScorer", "ClipScores", "EvalCameras", "EvalCase", "EvalConfig", "EvalRun", "GroupSummary", "JudgeAnswer",
    "JudgeAnswerError", "JudgeEndpoint", "MetricModels", "MetricSpec", "MetricSummary", "MetricValue", "PhLoss",
    "VIEScoreJudge", "VIEScoreResult", "ViewJudgement", "aggregate", "build_tiny_clip", "clip_direction_consistency",
    "clip_directional_similarity",
    "clip_preprocess", "clip_text_image_similarity", "export_eval_cameras", "judge_endpoint_from_env", "load_cases", "load_clip",
    "load_metric_models", "parse_judge_answer", "ph_loss_rendered_depth", "ph_loss_vggt", "resolve_eval_cameras",
    "run_eval", "score_case", "view_judgement",
]

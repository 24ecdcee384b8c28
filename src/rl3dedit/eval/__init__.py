"""Measuring edits: cases files, CLIP-T / CLIP-dir, Ph-Loss, VGGT consistency, VIEScore, timing; the benchmark
runner behind `rl3dedit eval` and its table and HTML report.

Names are imported on first use (`rl3dedit.lazy`), so configs and the CLI load without diffusers or transformers.
"""

from rl3dedit.lazy import lazy_exports

_EXPORTS = {
    "ALL_METRICS": "rl3dedit.eval.config",
    "CaseResult": "rl3dedit.eval.results",
    "CaseScores": "rl3dedit.eval.scoring",
    "CaseSet": "rl3dedit.eval.cases",
    "CaseViews": "rl3dedit.eval.scoring",
    "ClipScorer": "rl3dedit.eval.clip",
    "ClipScores": "rl3dedit.eval.clip",
    "DATA_ROOT_ENV": "rl3dedit.eval.cases",
    "EvalCameras": "rl3dedit.eval.cases",
    "EvalCase": "rl3dedit.eval.cases",
    "EvalConfig": "rl3dedit.eval.config",
    "EvalRun": "rl3dedit.eval.runner",
    "GroupSummary": "rl3dedit.eval.results",
    "JudgeAnswer": "rl3dedit.eval.viescore",
    "JudgeAnswerError": "rl3dedit.eval.viescore",
    "JudgeEndpoint": "rl3dedit.eval.viescore",
    "METRICS": "rl3dedit.eval.results",
    "MetricModels": "rl3dedit.eval.scoring",
    "MetricSpec": "rl3dedit.eval.results",
    "MetricSummary": "rl3dedit.eval.results",
    "MetricValue": "rl3dedit.eval.results",
    "PhLoss": "rl3dedit.eval.photometric",
    "SPLITS": "rl3dedit.eval.cases",
    "VIEScoreJudge": "rl3dedit.eval.viescore",
    "VIEScoreResult": "rl3dedit.eval.viescore",
    "ViewJudgement": "rl3dedit.eval.viescore",
    "aggregate": "rl3dedit.eval.results",
    "build_tiny_clip": "rl3dedit.eval.clip",
    "clip_direction_consistency": "rl3dedit.eval.clip",
    "clip_directional_similarity": "rl3dedit.eval.clip",
    "clip_preprocess": "rl3dedit.eval.clip",
    "clip_text_image_similarity": "rl3dedit.eval.clip",
    "export_eval_cameras": "rl3dedit.eval.runner",
    "judge_endpoint_from_env": "rl3dedit.eval.viescore",
    "load_cases": "rl3dedit.eval.cases",
    "load_clip": "rl3dedit.eval.clip",
    "load_metric_models": "rl3dedit.eval.scoring",
    "parse_judge_answer": "rl3dedit.eval.viescore",
    "ph_loss_rendered_depth": "rl3dedit.eval.photometric",
    "ph_loss_vggt": "rl3dedit.eval.photometric",
    "resolve_eval_cameras": "rl3dedit.eval.cases",
    "run_eval": "rl3dedit.eval.runner",
    "score_case": "rl3dedit.eval.scoring",
    "view_judgement": "rl3dedit.eval.viescore",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""The benchmark runner behind `rl3dedit eval`: every case edited (or read from another method), rendered from novel
views, scored; per-case results, aggregates, `table.md` and `report.html` written atomically.

Output folder layout:
    config.yaml, cases.yaml          the resolved run config and a copy of the cases file
    cases/<id>/result.json           one per finished case (what `resume` skips); errors keep their traceback
    cases/<id>/edit/                 our edit run (`pipeline.run_edit` outputs), when we edit
    cases/<id>/eval_views/           novel-view renders, source_XX.png and edited_XX.png
    cases/<id>/eval_cameras.json     the evaluation cameras, INRIA cameras.json (so another method can render them)
    scenes/<scene>/base.ply          base 3DGS fitted once per capture
    results.json, table.md, report.html

Another method's outputs (`method_outputs`) are folders `<dir>/<case_id>/` holding its renders of the evaluation
views, `eval_views/*.png` in camera order (or an `edited.ply` we render), optionally `timings.json` (stage ->
seconds), `turntable.mp4` and `edited_views/*.png` (its 2D edits; the last two are only shown in the report).
"""

from __future__ import annotations

import json
import logging
import shutil
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from rl3dedit.chat import Transport
from rl3dedit.config import random_model_names, resolve_device
from rl3dedit.eval.cases import SPLITS, CaseSet, EvalCameras, EvalCase, resolve_eval_cameras
from rl3dedit.eval.report import render_report, turntable_strip
from rl3dedit.eval.results import METRICS, ORACLE_METRIC_KEYS, CaseResult, GroupSummary, MetricValue, aggregate
from rl3dedit.eval.scenes import load_case_scene
from rl3dedit.eval.scoring import CaseViews, MetricModels, load_metric_models, score_case
from rl3dedit.eval.table import render_table
from rl3dedit.files import write_json, write_text
from rl3dedit.pipeline.source import LoadedScene
from rl3dedit.pipeline.view_set import plan_view_set, render_size
from rl3dedit.progress import Progress
from rl3dedit.provenance import provenance
from rl3dedit.scene import Cameras, GaussianScene

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

logger = logging.getLogger(__name__)

EVAL_MARKER = ".rl3dedit-eval"


@dataclass
class EvalRun:
    """A finished evaluation (its files are in `out_dir`).

    Fields:
        out_dir: the evaluation folder (results.json, table.md, report.html, cases/).
        results: one per case, in cases-file order.
        groups: `overall` and per-split summaries.
        method: the evaluated method's name.
        judge_model: the VIEScore judge, or None when VIEScore was not computed.
        resumed: ids of cases taken from an earlier run.
    """

    out_dir: Path
    results: list[CaseResult]
    groups: dict[str, GroupSummary]
    method: str
    judge_model: str | None
    resumed: list[str]


def _prepare_out_dir(out_dir: Path, *, resume: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / EVAL_MARKER).exists():
            raise FileExistsError(f"{out_dir} is not empty and is not an rl3dedit eval folder; choose another --out")
        if not resume:
            raise FileExistsError(
                f"{out_dir} holds an earlier evaluation; pass --resume to continue it, or choose another --out"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / EVAL_MARKER).write_text("written by rl3dedit eval\n")


def _render(scene: GaussianScene, cameras: Cameras, render_config, *, depth: bool):
    from rl3dedit.render import render

    with torch.no_grad():
        out = render(scene, cameras, mode="RGB+ED" if depth else "RGB", background=tuple(render_config.background),
                     backend=render_config.backend, chunk_size=render_config.chunk_size)
    return out.rgb.clamp(0, 1), (out.depth if depth else None)


def _write_cameras(cameras: EvalCameras, path: Path) -> None:
    """INRIA cameras.json (`scene.write_cameras_json`); `id` is the scene camera index, or the frame of a path."""
    from rl3dedit.scene import write_cameras_json

    write_cameras_json(cameras.cameras.to("cpu"), path, ids=cameras.indices)


def _load_method_views(method_dir: Path, cameras: Cameras, render_config) -> torch.Tensor:
    """Another method's renders of the E evaluation cameras, (E, 3, H, W) at the cameras' size."""
    from rl3dedit.views import load_views

    views_dir, ply = method_dir / "eval_views", method_dir / "edited.ply"
    if views_dir.is_dir():
        views = load_views(views_dir)
        if views.shape[0] != len(cameras):
            raise ValueError(
                f"{views_dir}: {views.shape[0]} images, expected one per evaluation camera ({len(cameras)}; see "
                "eval_cameras.json)"
            )
        if tuple(views.shape[2:]) != (cameras.height, cameras.width):
            logger.info("resizing %s from %dx%d to %dx%d", views_dir, views.shape[3], views.shape[2], cameras.width,
                        cameras.height)
            views = F.interpolate(views, size=(cameras.height, cameras.width), mode="bilinear", antialias=True)
        return views.clamp(0, 1).to(cameras.device)
    if ply.is_file():
        from rl3dedit.scene import read_ply

        return _render(read_ply(ply).to(cameras.device), cameras, render_config, depth=False)[0]
    raise FileNotFoundError(f"{method_dir}: expected eval_views/ (renders of the evaluation cameras) or edited.ply")


def _method_timings(method_dir: Path) -> dict[str, float] | None:
    path = method_dir / "timings.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of stage name -> seconds, found {data!r}")
    return {str(k): float(v) for k, v in data.items()}


@dataclass
class _Edited:
    """The edited side of a case: renders at the evaluation cameras plus what the report shows."""

    eval_cameras: EvalCameras
    views: torch.Tensor
    timings: dict[str, float] | None
    edited_indices: list[int]
    extra_files: dict[str, Path]
    edit_metrics: dict
    oracle_metrics: dict[str, float] = field(default_factory=dict)


def _sized(cameras: EvalCameras, config: RunConfig, device: torch.device) -> EvalCameras:
    """The evaluation cameras at the render size (`eval.render_size`, else `views.view_size`; aspect kept)."""
    size = render_size(cameras.cameras, config.eval.render_size or config.views.view_size, align=2)
    return EvalCameras(cameras.cameras.rescaled(*size).to(device), cameras.indices, cameras.source)


def _edit_ours(case, case_scene: LoadedScene, config: RunConfig, case_dir: Path, edit_fn) -> _Edited:
    report = edit_fn(
        config, instruction=case.instruction, out_dir=case_dir / "edit", scene=case_scene.scene,
        cameras=case_scene.cameras, turntable_frames=config.eval.turntable_frames, overwrite=True,
    )
    cameras = _sized(resolve_eval_cameras(
        case, case_scene.cameras, edited_indices=report.view_indices, render_path=case_scene.render_path
    ), config, case_scene.cameras.device)
    views, _ = _render(report.edited_scene, cameras.cameras, config.render, depth=False)
    run_dir = Path(report.out_dir)
    files = {"before_after": run_dir / "before_after.png", "turntable": run_dir / "turntable.mp4"}
    consistency = report.metrics.get("consistency", {}) if isinstance(report.metrics, dict) else {}
    return _Edited(cameras, views, dict(report.timings), list(report.view_indices), files, {"consistency": consistency})


def _edit_oracle(case: EvalCase, case_scene: LoadedScene, config: RunConfig) -> _Edited:
    """An oracle case: the known edit's renders of the M views are refitted (`eval.oracle.run_oracle_case`)."""
    from rl3dedit.eval.oracle import run_oracle_case

    outcome = run_oracle_case(case.oracle.kind, case_scene.scene, case_scene.cameras, config,
                              region_fraction=case.oracle.region_fraction)
    cameras = _sized(resolve_eval_cameras(
        case, case_scene.cameras, edited_indices=outcome.view_indices, render_path=case_scene.render_path
    ), config, case_scene.cameras.device)
    views, _ = _render(outcome.edited_scene.to(cameras.cameras.device), cameras.cameras, config.render, depth=False)
    scores = outcome.metrics
    oracle = {key: scores[key.removeprefix("oracle_")] for key in ORACLE_METRIC_KEYS}
    return _Edited(cameras, views, {"refit": scores["refit_seconds"]}, outcome.view_indices, {},
                   {"oracle": {"kind": case.oracle.kind, **scores}}, oracle)


def _planned_cameras(case: EvalCase, case_scene: LoadedScene, config: RunConfig) -> tuple[EvalCameras, list[int]]:
    """Evaluation cameras decided before any edit: held-out views exclude the views the edit job picks (the same
    `pipeline.plan_view_set`)."""
    edited_indices = plan_view_set(case_scene.cameras, config.views).indices
    cameras = resolve_eval_cameras(
        case, case_scene.cameras, edited_indices=edited_indices, render_path=case_scene.render_path
    )
    return _sized(cameras, config, case_scene.cameras.device), edited_indices


def _edit_other(case, case_scene: LoadedScene, config: RunConfig, case_dir: Path, method_outputs: Path) -> _Edited:
    method_dir = method_outputs / case.id
    if not method_dir.is_dir():
        raise FileNotFoundError(f"case {case.id!r}: no method outputs folder {method_dir}")
    cameras, edited_indices = _planned_cameras(case, case_scene, config)
    views = _load_method_views(method_dir, cameras.cameras, config.render)
    files = {"turntable": method_dir / "turntable.mp4"}
    if (method_dir / "edited_views").is_dir():
        from rl3dedit.views import load_views, make_comparison_sheet, save_image

        sheet = make_comparison_sheet([load_views(method_dir / "edited_views")], ["edited"])
        files["edited_views"] = save_image(sheet, case_dir / "edited_views.png")
    return _Edited(cameras, views, _method_timings(method_dir), edited_indices, files, {})


def _save_views(case_dir: Path, source: torch.Tensor, edited: torch.Tensor) -> None:
    from rl3dedit.views import make_comparison_sheet, save_image

    views_dir = case_dir / "eval_views"
    views_dir.mkdir(exist_ok=True)
    for i, (src, dst) in enumerate(zip(source, edited)):
        save_image(src, views_dir / f"source_{i:02d}.png")
        save_image(dst, views_dir / f"edited_{i:02d}.png")
    save_image(make_comparison_sheet([source, edited], ["source", "edited"]), case_dir / "eval_sheet.png")


def _report_files(case_dir: Path, out_dir: Path, extra: dict[str, Path]) -> dict[str, str]:
    """Images and video for report.html, as paths relative to `out_dir` (files from elsewhere are copied in)."""
    files = {"eval_sheet": case_dir / "eval_sheet.png"}
    for key, path in extra.items():
        if not path.is_file():
            continue
        if not path.is_relative_to(out_dir):
            shutil.copyfile(path, case_dir / path.name)
            path = case_dir / path.name
        files[key] = path
    if "turntable" in files:
        files["turntable_strip"] = case_dir / "turntable_strip.png"
        turntable_strip(files["turntable"], files["turntable_strip"])
    return {key: str(path.relative_to(out_dir)) for key, path in files.items()}


def _evaluate_case(
    case: EvalCase, cases: CaseSet, config: RunConfig, models: MetricModels, out_dir: Path, *,
    method_outputs: Path | None, edit_fn, device: torch.device,
) -> CaseResult:
    case_dir = out_dir / "cases" / case.id
    case_dir.mkdir(parents=True, exist_ok=True)
    case_scene = load_case_scene(case, cases, config, cache_dir=out_dir / "scenes", device=device)
    if case.oracle is not None:
        edited = _edit_oracle(case, case_scene, config)
    elif method_outputs is None:
        edited = _edit_ours(case, case_scene, config, case_dir, edit_fn)
    else:
        edited = _edit_other(case, case_scene, config, case_dir, method_outputs)
    cameras = edited.eval_cameras.cameras
    source_views, source_depth = _render(case_scene.scene, cameras, config.render, depth=True)
    _save_views(case_dir, source_views, edited.views)
    _write_cameras(edited.eval_cameras, case_dir / "eval_cameras.json")
    files = _report_files(case_dir, out_dir, edited.extra_files)
    views = CaseViews(edited.eval_cameras.cameras, source_views, edited.views, source_depth, edited.timings)
    scores = score_case(case, views, models, config)
    details = {
        "captions": {"source": case.source_caption, "target": case.target_caption},
        "scene": case_scene.description, "eval_cameras": edited.eval_cameras.source,
        "eval_camera_indices": edited.eval_cameras.indices, "edited_view_indices": edited.edited_indices,
        "render_size": [edited.eval_cameras.cameras.width, edited.eval_cameras.cameras.height],
        **edited.edit_metrics, **scores.details,
    }
    oracle = {key: MetricValue(value) for key, value in edited.oracle_metrics.items()}
    return CaseResult(case.id, case.split, case.instruction, "ok", {**scores.metrics, **oracle}, details, files)


def _failed(case: EvalCase, exc: BaseException) -> CaseResult:
    logger.error("case %s failed: %s: %s", case.id, exc.__class__.__name__, exc)
    return CaseResult(
        case.id, case.split, case.instruction, "error",
        error=f"{exc.__class__.__name__}: {exc}", traceback=traceback.format_exc(),
        details={"captions": {"source": case.source_caption, "target": case.target_caption}},
    )


def _finished(path: Path) -> CaseResult | None:
    if not path.is_file():
        return None
    try:
        result = CaseResult.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        logger.warning("ignoring unreadable %s (%s); the case runs again", path, exc)
        return None
    return result if result.status == "ok" else None


def run_eval(
    config: RunConfig,
    cases: CaseSet,
    out_dir: Path,
    *,
    method_outputs: Path | None = None,
    method_name: str | None = None,
    resume: bool = False,
    edit_fn: Callable | None = None,
    judge_transport: Transport | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> EvalRun:
    """Evaluate every case of `cases` and write the evaluation folder `out_dir` (layout in the module docstring).

    Args:
        config: the run config (editor, views, recon, verifier for our edit; `eval` for the metrics).
        method_outputs: score another method's renders from `<method_outputs>/<case_id>/` instead of editing.
        resume: continue an earlier evaluation in `out_dir`, skipping cases whose result.json says `ok`.
        edit_fn: the edit function (default `rl3dedit.pipeline.run_edit`), replaceable in tests.
        judge_transport, env: VIEScore transport and environment (default urllib and os.environ).
    A failing case is recorded with its error and traceback and the evaluation goes on. Missing CLIP / VGGT
    weights fail before any case runs.
    """
    out_dir = Path(out_dir).expanduser().resolve()
    method_outputs = Path(method_outputs).resolve() if method_outputs is not None else None
    if method_outputs is not None and not method_outputs.is_dir():
        raise FileNotFoundError(f"--method-outputs {method_outputs} is not a folder")
    if edit_fn is None and method_outputs is None:
        from rl3dedit.pipeline import run_edit as edit_fn
    device = resolve_device(config.device)
    models = load_metric_models(config, device, judge_transport=judge_transport, env=env)
    from rl3dedit.config import dump_config

    _prepare_out_dir(out_dir, resume=resume)
    dump_config(config, out_dir / "config.yaml")
    write_text(out_dir / "cases.yaml", cases.path.read_text())
    method = method_name or (method_outputs.name if method_outputs is not None else f"RL3DEdit ({config.name} preset)")
    results, resumed = [], []
    for index, case in enumerate(cases.cases):
        if progress is not None:
            progress(case.id, index, len(cases.cases))
        result_path = out_dir / "cases" / case.id / "result.json"
        previous = _finished(result_path) if resume else None
        if previous is not None:
            logger.info("case %s already finished; skipped (--resume)", case.id)
            results.append(previous)
            resumed.append(case.id)
            continue
        try:
            result = _evaluate_case(
                case, cases, config, models, out_dir, method_outputs=method_outputs, edit_fn=edit_fn, device=device
            )
        except Exception as exc:  # one broken case must not stop the benchmark; the traceback is kept
            result = _failed(case, exc)
        result_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(result_path, result.to_json())
        results.append(result)
    judge_model = models.judge.client.model if models.judge is not None else None
    groups = aggregate(results, SPLITS)
    _write_outputs(out_dir, cases, config, results, groups, method=method, judge_model=judge_model,
                   ours=method_outputs is None)
    return EvalRun(out_dir, results, groups, method, judge_model, resumed)


def export_eval_cameras(config: RunConfig, cases: CaseSet, out_dir: Path) -> list[Path]:
    """Write `cases/<id>/eval_cameras.json` for every case without editing or scoring anything.

    Another method renders these cameras into `<its dir>/<case_id>/eval_views/` for `--method-outputs`. `held_out`
    cameras exclude the M views `views.select_views` picks for our editor, exactly as in a scored run.
    """
    out_dir = Path(out_dir).expanduser().resolve()
    _prepare_out_dir(out_dir, resume=True)  # a folder rl3dedit eval did not write is refused, as for a scored run
    device = resolve_device(config.device)
    written = []
    for case in cases.cases:
        case_scene = load_case_scene(case, cases, config, cache_dir=out_dir / "scenes", device=device,
                                     cameras_only=True)
        cameras, _ = _planned_cameras(case, case_scene, config)
        path = out_dir / "cases" / case.id / "eval_cameras.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_cameras(cameras, path)
        written.append(path)
    return written


def _write_outputs(out_dir: Path, cases: CaseSet, config: RunConfig, results: list[CaseResult],
                   groups: dict[str, GroupSummary], *, method: str, judge_model: str | None,
                   ours: bool = True) -> None:
    # Numbers from random (tiny) models check the pipeline only: say so in every output.
    random_models = random_model_names(config, ("editor", "verifier", "clip") if ours else ("verifier", "clip"))
    summary = {
        "name": cases.name, "method": method, "cases_file": str(cases.path), "preset": config.name,
        "random_models": random_models,
        "judge_model": judge_model, "clip_model": config.eval.clip_model, "verifier_model": config.verifier.model,
        "metrics": [vars(spec) for spec in METRICS],
        "aggregate": {
            name: {"num_cases": g.num_cases, "num_failed": g.num_failed, "stage_times_s": g.stage_times_s,
                   "metrics": {k: vars(m) for k, m in g.metrics.items()}}
            for name, g in groups.items()
        },
        "cases": [result.to_json() for result in results],
        "provenance": provenance(),
    }
    write_json(out_dir / "results.json", summary)
    title = f"rl3dedit evaluation: {cases.name}"
    if random_models:
        title += f" (random models: {', '.join(random_models)}; the numbers check the pipeline, not quality)"
    write_text(out_dir / "table.md", render_table(groups, method=method, title=title, judge_model=judge_model))
    page = render_report(
        results, groups, out_dir=out_dir, title=title, method=method, judge_model=judge_model,
        max_video_mb=config.eval.report_max_video_mb,
    )
    write_text(out_dir / "report.html", page)

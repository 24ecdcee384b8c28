"""`rl3dedit score`: how multi-view consistent is a set of views, and which views break it.

Three checks, one report: `vggt` (VGGT confidence and relative-pose agreement, paper Eqs. 1-2; needs VGGT weights),
`sfm` (SIFT matches triangulated against the known cameras) and `warp` (photometric agreement of neighbouring views
warped with the source scene's rendered depth). The two classical checks need no model weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail, resolve_config, resolve_views_input, set_option
from rl3dedit.files import dumps_json

VERIFIER_PRESETS = ("tiny", "paper")
REWARD_CHOICES = {"vggt": "consistency", "warp": "warp", "sfm": "sfm"}
"""`--reward` values and the reward each builds (`rewards.build_reward` names)."""


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    path: Path = typer.Argument(..., help="An edit run (its views/edited or views/source with its cameras.json), a "
                                "render output (views/ + cameras.json), a folder of views (sorted filename order) "
                                "or one grid image."),
    which: str = typer.Option("edited", "--views", help="Which views of an edit run: edited or source."),
    cameras: Optional[Path] = typer.Option(None, "--cameras", help="Cameras of the views (cameras.json, "
                                           "transforms.json or a COLMAP model): one per view in order, or the "
                                           "capture's file when the views keep its image file names. Distorted "
                                           "cameras undistort the views with the same model."),
    reward: Optional[str] = typer.Option(None, "--reward", help="vggt (needs VGGT weights), sfm (needs --cameras) "
                                         "or warp (needs --cameras; depth from --scene, else VGGT). Default: vggt "
                                         "when its weights are found locally, otherwise an error listing the "
                                         "choices."),
    scene: Optional[Path] = typer.Option(None, "--scene", help="The 3DGS .ply the views show (or were edited "
                                         "from): the warp check then uses its rendered depth, no weights needed."),
    preset: Optional[str] = typer.Option(None, "--preset", help="VGGT settings from a preset: paper (VGGT-1B, the "
                                         "default) or tiny (random weights: a pipeline check whose numbers mean "
                                         "nothing)."),
    verifier_alias: Optional[str] = typer.Option(None, "--verifier", hidden=True),
    verifier_model: Optional[str] = typer.Option(None, "--verifier-model", help="VGGT weights: local model.pt / "
                                                 ".safetensors / folder, or a hub id (online)."),
    weights_alias: Optional[str] = typer.Option(None, "--verifier-weights", hidden=True),
    sets: Optional[list[str]] = set_option(),
    pinhole_views: bool = typer.Option(False, "--pinhole-views", help="The views are already undistorted (e.g. "
                                       "renders): use distorted --cameras as their pinhole cameras."),
    rows: int = typer.Option(3, "--rows", min=1, help="Grid rows when PATH is a grid image."),
    cols: int = typer.Option(3, "--cols", min=1, help="Grid columns when PATH is a grid image."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout (top-level `score`: "
                                 "higher = more consistent, whatever the reward)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the JSON report to this file."),
) -> None:
    """Score the consistency of views with one check (vggt, sfm or warp): the overall score, its terms, and each
    view's score with the views that break consistency first."""
    from rl3dedit.config import resolve_device

    verifier, verifier_weights = preset or verifier_alias, verifier_model or weights_alias
    if verifier is not None and verifier not in VERIFIER_PRESETS:
        fail(f"--preset must be one of {', '.join(VERIFIER_PRESETS)}, got {verifier!r}")
    if reward is not None and reward not in REWARD_CHOICES:
        fail(f"--reward must be one of {', '.join(REWARD_CHOICES)}, got {reward!r}")
    if which not in ("edited", "source"):
        fail(f"--views must be edited or source, got {which!r}")
    cfg = resolve_config(verifier or "paper", None, sets, {"verifier.model": verifier_weights})
    # What rl3dedit wrote (an edit run, a render output) carries its views' cameras: use them unless given.
    path, found_cameras = resolve_views_input(path, which)
    cameras = cameras if cameras is not None else found_cameras
    views, names = _read_views(path, rows, cols)
    undistorted = False
    cams = None
    if cameras is not None:
        views, cams, undistorted = _pair_with_cameras(views, names, cameras, pinhole_views)
    if reward is None:
        reward = _default_reward(cfg, explicit_verifier=verifier is not None or verifier_weights is not None)
    if reward in ("sfm", "warp") and cameras is None:
        fail(f"--reward {reward} checks the views against their cameras: pass --cameras FILE")
    dev = resolve_device(device)
    source = _read_scene(scene, dev) if scene is not None else None
    scorer = _build(reward, cfg, dev, source)

    report = score_report(scorer, views.to(dev), cams, names, name=reward)
    report["undistorted"] = undistorted
    if reward == "vggt":
        report["verifier"] = cfg.verifier.model
    report["random_models"] = ["VGGT verifier"] if reward == "vggt" and cfg.verifier.model == "tiny" else []
    if out is not None:
        from rl3dedit.files import write_json

        write_json(out, report)
    if as_json:
        typer.echo(dumps_json(report, indent=2))  # strict: NaN scores print as null
    else:
        _print_report(report)


def _default_reward(cfg, *, explicit_verifier: bool) -> str:
    """`vggt` when the user named a verifier or the preset's VGGT weights are on this machine; otherwise exit with
    the classical choices (the random tiny VGGT is never picked silently)."""
    if explicit_verifier:
        return "vggt"
    from rl3dedit.preflight import check_model

    check = check_model("verifier", cfg)
    if check.status in ("local", "cached"):
        return "vggt"
    fail(f"no VGGT weights found locally ({check.where}), so there is no default check. Choose one:\n"
         "  --reward sfm --cameras FILE               SIFT matches against the known cameras (no weights)\n"
         "  --reward warp --cameras FILE --scene PLY  photometric warp with the scene's rendered depth (no weights)\n"
         "  --reward vggt --verifier-model PATH       VGGT-1B (model.pt / .safetensors, or facebook/VGGT-1B online)\n"
         "  --preset tiny                             random tiny VGGT: a pipeline check, its numbers mean nothing")
    raise AssertionError  # fail() exits


def _read_views(path: Path, rows: int, cols: int):
    """(V, 3, H, W) views and their names from a folder of images or a grid image; exits 1 on unreadable input."""
    from rl3dedit.views import IMAGE_SUFFIXES, load_image, load_views, split

    try:
        if path.is_dir():
            views = load_views(path)
            # The same files, in the same sorted order, as load_views reads.
            names = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            views = split(load_image(path), rows, cols)
            names = [f"cell r{i // cols}c{i % cols}" for i in range(rows * cols)]
        else:
            fail(f"{path}: no such file or folder (expected a folder of views or a grid image)")
    except (OSError, ValueError) as exc:
        fail(f"cannot read views from {path}: {exc}")
    if len(views) < 2:
        fail(f"{path}: found {len(views)} view(s); consistency needs at least 2")
    if min(views.shape[-2:]) < 8:  # VGGT's 14-px patches and the warp see (almost) nothing: a number, but no score
        fail(f"{path}: views are {views.shape[-1]}x{views.shape[-2]} px; scoring needs at least 8 px per side")
    return views, names


def _pair_with_cameras(views, names: list[str], path: Path, pinhole_views: bool):
    """The views as pinhole images of their cameras: cameras picked by image file stem when the file names the
    views' files (or one per view in order), rescaled to the views, and the views undistorted with the file's lens
    model unless `pinhole_views`. Returns (views, cameras, whether the views were undistorted)."""
    from rl3dedit.scene import CameraRecords, load_camera_records
    from rl3dedit.scene.capture import undistort_views

    try:
        records = load_camera_records(path)
    except (OSError, ValueError) as exc:
        fail(f"cannot read cameras from {path}: {exc}")
    paths = records.cameras.image_paths
    # By file stem, so that frames re-encoded (jpg -> png) or resized still find their camera.
    by_stem = {p.stem: i for i, p in enumerate(paths)} if paths is not None else {}
    if by_stem and all(Path(name).stem in by_stem for name in names):
        index = [by_stem[Path(name).stem] for name in names]
    elif len(records.cameras) == len(names):
        index = list(range(len(names)))
    else:
        fail(f"{path} holds {len(records.cameras)} cameras but there are {len(names)} views; pass one camera per "
             f"view in the views' order, or keep the capture's image file names")
    distortion = records.distortion[index] if records.distortion is not None else None
    records = CameraRecords(records.cameras[index], None if pinhole_views else distortion)
    try:
        views, cams = undistort_views(views, records, path)
    except ValueError as exc:
        fail(str(exc))
    return views, cams, records.is_distorted


def _read_scene(path: Path, device):
    from rl3dedit.scene import read_ply

    try:
        return read_ply(path).to(device)
    except (OSError, ValueError) as exc:
        fail(f"cannot read the scene {path}: {exc}")


def _build(reward: str, cfg, device, scene):
    """The view-set reward for `--reward`; VGGT load failures exit with what to pass."""
    from rl3dedit.rewards import build_reward

    try:
        return build_reward(REWARD_CHOICES[reward], cfg, device=device, scene=scene)
    except (OSError, RuntimeError, ValueError) as exc:
        hint = (" Pass --verifier-model /path/to/model.pt (or .safetensors, or a folder holding one; a hub id such "
                "as facebook/VGGT-1B works when online), or a check that needs no weights: --reward sfm, or "
                "--reward warp --scene PLY.")
        fail(f"cannot load the VGGT verifier {cfg.verifier.model!r}: {str(exc).rstrip('.')}.{hint}")


def score_report(reward, views, cameras, names: list[str], *, name: str) -> dict:
    """A JSON-ready report of one view set (V, 3, H, W) under a view-set reward.

    `score` is the reward's total (higher = more consistent), `scores` its terms and total, `views` each view's
    score (higher = more consistent with the rest; for VGGT also its confidences), `weakest_views` the names from
    least to most consistent. VGGT with cameras adds the adjacent pairs' pose errors. `name` is the `--reward`.
    """
    from rl3dedit.rewards import ConsistencyReward

    if isinstance(reward, ConsistencyReward):
        evaluation = reward.evaluate(views[None], cameras)
        breakdown = evaluation.breakdown
    else:
        evaluation, breakdown = None, reward.score(views[None], cameras)
    per_view = breakdown.per_view[0].tolist()
    rows = []
    for i, view_name in enumerate(names):
        row = {"index": i, "name": view_name, "score": per_view[i]}
        if evaluation is not None:
            row.update({"depth_confidence": float(evaluation.depth_confidence[0, i]),
                        "point_confidence": float(evaluation.point_confidence[0, i]),
                        "raw_depth_confidence": float(evaluation.raw_depth_confidence[0, i]),
                        "raw_point_confidence": float(evaluation.raw_point_confidence[0, i])})
        rows.append(row)
    # NaN (a view sharing no valid pixel with its neighbours) sorts first: it is the least trustworthy.
    order = sorted(range(len(names)), key=lambda i: (not math.isnan(per_view[i]), per_view[i]))
    report = {
        "reward": name,
        "score": float(breakdown.total[0]),
        "scores": breakdown.as_floats(0),
        "num_views": len(names),
        "views": rows,
        "weakest_views": [names[i] for i in order],
    }
    if isinstance(reward, ConsistencyReward):
        report["confidence_transform"] = reward.confidence_transform
    if getattr(reward, "depth_source", None) is not None:
        report["depth_source"] = reward.depth_source
    if evaluation is not None and evaluation.pose_error is not None:
        err = evaluation.pose_error
        report["pairs"] = [
            {"pair": [names[m], names[m + 1]], "rotation_error_deg": float(err.rotation_deg[0, m]),
             "translation_error_deg": float(err.translation_deg[0, m])}
            for m in range(len(names) - 1)
        ]
    return report


TERM_LABELS = {"depth": "r_D depth confidence", "point": "r_P point confidence", "pose": "r_T relative pose",
               "sfm": "r_SfM registered x exp(-reprojection px)", "warp": "r_warp exp(-photometric loss)",
               "total": "score"}


def _print_report(report: dict) -> None:
    from rich.table import Table

    detail = {"vggt": f"VGGT {report.get('verifier')}, confidence {report.get('confidence_transform')}",
              "warp": f"depth from the {report.get('depth_source')}", "sfm": "SIFT + known cameras"}[report["reward"]]
    mark = "; RANDOM tiny verifier: checks the pipeline, not a measurement" if report.get("random_models") else ""
    summary = Table(title=f"{report['reward']} consistency ({detail}; higher is better{mark})")
    summary.add_column("term")
    summary.add_column("value", justify="right")
    for key, value in report["scores"].items():
        summary.add_row(TERM_LABELS.get(key, key), f"{value:.4f}")
    console.print(summary)
    if report.get("undistorted"):
        console.print("views undistorted with the cameras' lens model")
    rank = {name: i + 1 for i, name in enumerate(report["weakest_views"])}
    columns = ["view", "score"]
    vggt = report["reward"] == "vggt"
    if vggt:
        columns += ["depth conf", "point conf", "raw depth", "raw point"]
    views = Table(title="per view (rank 1 = least consistent)")
    for column in (*columns, "rank"):
        views.add_column(column, justify="left" if column == "view" else "right")
    for row in report["views"]:
        cells = [row["name"], f"{row['score']:.4f}"]
        if vggt:
            cells += [f"{row['depth_confidence']:.4f}", f"{row['point_confidence']:.4f}",
                      f"{row['raw_depth_confidence']:.2f}", f"{row['raw_point_confidence']:.2f}"]
        views.add_row(*cells, str(rank[row["name"]]))
    console.print(views)
    if "pairs" in report:
        pairs = Table(title="adjacent pairs: relative pose vs cameras")
        for column in ("pair", "rotation err (deg)", "translation dir err (deg)"):
            pairs.add_column(column, justify="left" if column == "pair" else "right")
        for row in report["pairs"]:
            pairs.add_row(" -> ".join(row["pair"]), f"{row['rotation_error_deg']:.2f}",
                          f"{row['translation_error_deg']:.2f}")
        console.print(pairs)
    random = " (random tiny verifier: not a measurement)" if report.get("random_models") else ""
    console.print(f"least consistent first: {', '.join(report['weakest_views'][:3])}{random}")

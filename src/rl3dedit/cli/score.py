"""`rl3dedit score`: how multi-view consistent is a set of views, and which views break it (VGGT, paper Eqs. 1-2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail

VERIFIER_PRESETS = ("tiny", "paper")


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    path: Path = typer.Argument(..., help="A folder of views (read in sorted filename order) or one grid image."),
    cameras: Optional[Path] = typer.Option(None, "--cameras", help="Cameras of the views, in the same order "
                                           "(cameras.json, transforms.json or a COLMAP model); enables r_T."),
    verifier: str = typer.Option("tiny", "--verifier", help="Verifier settings from a preset: paper (VGGT-1B) or "
                                 "tiny (random, offline, for checks only)."),
    verifier_weights: Optional[str] = typer.Option(None, "--verifier-weights", help="VGGT weights: local "
                                                   "model.pt / .safetensors / folder, or a hub id (online)."),
    rows: int = typer.Option(3, "--rows", help="Grid rows when PATH is a grid image."),
    cols: int = typer.Option(3, "--cols", help="Grid columns when PATH is a grid image."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout."),
) -> None:
    """Score the consistency of views: per-view VGGT confidence, relative-pose agreement with --cameras, and the
    views that break consistency (lowest confidence first)."""
    from rl3dedit.config import load_config, resolve_device

    if verifier not in VERIFIER_PRESETS:
        fail(f"--verifier must be one of {', '.join(VERIFIER_PRESETS)}, got {verifier!r}")
    cfg = load_config(verifier)
    if verifier_weights is not None:
        cfg = cfg.override("verifier.model", verifier_weights)
    views, names = _read_views(path, rows, cols)
    cams = _read_cameras(cameras, len(names)) if cameras is not None else None
    vggt = _load_verifier(cfg, resolve_device(device), verifier_weights)

    from rl3dedit.rewards import ConsistencyReward

    reward = ConsistencyReward(vggt, confidence_transform=cfg.rewards.confidence_transform,
                               image_size=cfg.verifier.image_size, preprocess_mode=cfg.verifier.preprocess_mode)
    evaluation = reward.evaluate(views[None].to(resolve_device(device)), cams)
    report = score_report(evaluation, names, verifier=cfg.verifier.model, transform=cfg.rewards.confidence_transform)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)


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
    return views, names


def _read_cameras(path: Path, num_views: int):
    from rl3dedit.scene import load_cameras

    try:
        cams = load_cameras(path)
    except (OSError, ValueError) as exc:
        fail(f"cannot read cameras from {path}: {exc}")
    if len(cams) != num_views:
        fail(f"{path} holds {len(cams)} cameras but there are {num_views} views; pass one camera per view, "
             f"in the views' order")
    return cams


def _load_verifier(cfg, device, weights: str | None):
    from rl3dedit.geometry import load_verifier

    try:
        return load_verifier(cfg.verifier, device)
    except (OSError, RuntimeError, ValueError) as exc:
        hint = ("" if weights else " Pass --verifier-weights /path/to/model.pt (or .safetensors, or a folder "
                "holding one; a hub id such as facebook/VGGT-1B works when online), or --verifier tiny for an "
                "offline pipeline check.")
        fail(f"cannot load the VGGT verifier {cfg.verifier.model!r}: {str(exc).rstrip('.')}.{hint}")


def score_report(evaluation, names: list[str], *, verifier: str, transform: str) -> dict:
    """A JSON-ready summary of one view set's `ConsistencyEvaluation` (candidate 0).

    Views are ranked by the mean of their transformed depth and point confidence, lowest first: one VGGT pass,
    and the views VGGT trusts least are those that disagree with the rest (`paper.md` §4.1). (Leave-one-out gains
    would cost V more passes and move VGGT's reference frame when view 0 is left out.)
    """
    depth, point = evaluation.depth_confidence[0], evaluation.point_confidence[0]
    per_view = [
        {"index": i, "name": name, "depth_confidence": float(depth[i]), "point_confidence": float(point[i]),
         "raw_depth_confidence": float(evaluation.raw_depth_confidence[0, i]),
         "raw_point_confidence": float(evaluation.raw_point_confidence[0, i])}
        for i, name in enumerate(names)
    ]
    order = ((depth + point) / 2).argsort().tolist()
    report = {
        "verifier": verifier,
        "confidence_transform": transform,
        "num_views": len(names),
        "scores": evaluation.breakdown.as_floats(0),
        "views": per_view,
        "weakest_views": [names[i] for i in order],
    }
    if evaluation.pose_error is not None:
        err = evaluation.pose_error
        report["pairs"] = [
            {"pair": [names[m], names[m + 1]], "rotation_error_deg": float(err.rotation_deg[0, m]),
             "translation_error_deg": float(err.translation_deg[0, m])}
            for m in range(len(names) - 1)
        ]
    return report


def _print_report(report: dict) -> None:
    from rich.table import Table

    scores = report["scores"]
    labels = {"depth": "r_D depth confidence", "point": "r_P point confidence", "pose": "r_T relative pose",
              "total": "mean of terms"}
    summary = Table(title=f"consistency ({report['verifier']}, confidence {report['confidence_transform']}; "
                          "higher is better)")
    summary.add_column("term")
    summary.add_column("value", justify="right")
    for key, label in labels.items():
        if key in scores:
            summary.add_row(label, f"{scores[key]:.4f}")
    console.print(summary)
    rank = {name: i + 1 for i, name in enumerate(report["weakest_views"])}
    views = Table(title="per view (rank 1 = least consistent)")
    for column in ("view", "depth conf", "point conf", "raw depth", "raw point", "rank"):
        views.add_column(column, justify="left" if column == "view" else "right")
    for row in report["views"]:
        views.add_row(row["name"], f"{row['depth_confidence']:.4f}", f"{row['point_confidence']:.4f}",
                      f"{row['raw_depth_confidence']:.2f}", f"{row['raw_point_confidence']:.2f}",
                      str(rank[row["name"]]))
    console.print(views)
    if "pairs" in report:
        pairs = Table(title="adjacent pairs: relative pose vs cameras")
        for column in ("pair", "rotation err (deg)", "translation dir err (deg)"):
            pairs.add_column(column, justify="left" if column == "pair" else "right")
        for row in report["pairs"]:
            pairs.add_row(" -> ".join(row["pair"]), f"{row['rotation_error_deg']:.2f}",
                          f"{row['translation_error_deg']:.2f}")
        console.print(pairs)
    console.print(f"least consistent first: {', '.join(report['weakest_views'][:3])}")

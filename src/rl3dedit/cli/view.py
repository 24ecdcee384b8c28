"""`rl3dedit view`: look at a splat scene and its edit in the browser (viser, served on 127.0.0.1)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail


def register(app: typer.Typer) -> None:
    app.command("view")(view_command)


def serve(viewer, exit_after: float | None = None) -> None:
    """Print the viewer's URL and keep it serving until Ctrl-C (or `exit_after` seconds), then stop it."""
    console.print(f"[bold green]viewer[/]: {viewer.url}  (Ctrl-C to stop)")
    try:
        deadline = None if exit_after is None else time.monotonic() + exit_after
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        viewer.close()


def build_viewer(target: Path, edited: Path | None = None, cameras: Path | None = None, port: int | None = None):
    """A `SceneViewer` for `view TARGET [EDITED]`: TARGET is a scene .ply or an edit run folder."""
    import torch

    from rl3dedit.scene import load_cameras, read_ply
    from rl3dedit.viewer import EditedViews, SceneViewer, read_edit_run

    run = None
    if target.is_dir():
        run = read_edit_run(target)
        if edited is not None:
            raise ValueError(f"{target} is an edit run folder, which holds its own edited.ply; drop {edited}")
        source_ply, edited_ply = run.source_ply or run.edited_ply, run.edited_ply if run.source_ply else None
        if source_ply is None:
            raise FileNotFoundError(f"{target}: neither edited.ply nor base/scene.ply in this folder")
        if run.source_ply is None:
            console.print(f"note: {target} holds no source scene (base/scene.ply); showing edited.ply only")
    else:
        source_ply, edited_ply = target, edited
        if edited is not None and ((edited.parent / "cameras.json").is_file() or (edited.parent / "views").is_dir()):
            run = read_edit_run(edited.parent)  # EDITED.ply inside its run folder: show the edited views too
    views = run.views if run is not None else None
    if cameras is not None:
        no_images = torch.empty(0, 3, 1, 1)
        views = EditedViews(load_cameras(cameras), no_images, no_images)
    source_scene = read_ply(source_ply)
    edited_scene = read_ply(edited_ply) if edited_ply is not None else None
    return SceneViewer(source_scene, edited_scene, views=views, port=port)


def view_command(
    target: Path = typer.Argument(..., help="A scene .ply (e.g. the source), or an edit run folder (edit --out)."),
    edited: Optional[Path] = typer.Argument(None, help="The edited .ply (e.g. RUN/edited.ply) for the before/after toggle."),
    cameras: Optional[Path] = typer.Option(None, "--cameras", help="Cameras to draw as frustums (cameras.json, transforms.json, COLMAP)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port on 127.0.0.1 (default: a free one)."),
    exit_after: Optional[float] = typer.Option(None, "--exit-after", min=0, help="Stop after this many seconds (scripts)."),
) -> None:
    """Serve a viser viewer on localhost: splats, before/after toggle, edited views as frustums, turntable path."""
    for path in (target, edited, cameras):
        if path is not None and not path.exists():
            fail(f"{path} does not exist")
    try:
        viewer = build_viewer(target, edited, cameras, port)
    except ImportError as exc:
        fail(f"{exc}. The viewer needs viser: pip install 'rl3dedit[view]'")
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    serve(viewer, exit_after)


def view_edit_report(report, port: int | None = None, exit_after: float | None = None) -> None:
    """`edit --view`: serve the finished edit (source and edited scenes, the edited views) until Ctrl-C."""
    from rl3dedit.viewer import EditedViews, SceneViewer

    views = EditedViews(report.view_cameras.to("cpu"), report.source_views.cpu(), report.edited_views.cpu())
    try:
        viewer = SceneViewer(report.source_scene.to("cpu"), report.edited_scene.to("cpu"), views=views, port=port)
    except ImportError as exc:
        fail(f"{exc} (the edit itself is written to {report.out_dir})")
    serve(viewer, exit_after)

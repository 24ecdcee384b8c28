"""`rl3dedit capture`: pose a folder of photos or a video and write a dataset that `fit` and `edit --data` read."""

from __future__ import annotations

from pathlib import Path

import typer

from rl3dedit.cli._common import console, fail


def register(app: typer.Typer) -> None:
    app.command("capture")(capture_command)


class _CaptureProgress:
    """One rich progress line per capture stage, driven by `run_capture`'s (stage, done, total) callback."""

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console,
        )
        self._progress.__enter__()
        self._tasks: dict[str, int] = {}
        return self._update

    def _update(self, stage: str, done: int, total: int, metrics=None) -> None:
        known = total if total > 0 else None
        if stage not in self._tasks:
            self._finish()  # a new stage means the previous ones are done
            self._tasks[stage] = self._progress.add_task(stage, total=known)
        self._progress.update(self._tasks[stage], completed=done, total=known)

    def _finish(self) -> None:
        for task in self._tasks.values():
            total = self._progress.tasks[task].total or self._progress.tasks[task].completed or 1
            self._progress.update(task, completed=total, total=total)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._finish()
        return self._progress.__exit__(exc_type, exc, tb)


def capture_command(
    source: Path = typer.Argument(..., help="A folder of photos (.jpg/.png, one camera) or a video file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset folder (images/ + sparse/0, written atomically)."),
    poses: str = typer.Option("colmap", "--poses", help="colmap (SIFT + incremental SfM, CPU) or vggt (feed-forward VGGT-1B)."),
    matcher: str = typer.Option("auto", "--matcher", help="auto, exhaustive or sequential (auto: exhaustive up to 100 images)."),
    camera_model: str = typer.Option("OPENCV", "--camera-model", help="COLMAP camera model shared by all photos (OPENCV, SIMPLE_RADIAL, ...)."),
    frames: int = typer.Option(100, "--frames", min=2, help="Video input: frames to keep (the sharpest of each window)."),
    max_image_size: int = typer.Option(1600, "--max-image-size", min=64, help="Longer side used for SIFT features."),
    vggt_model: str = typer.Option("facebook/VGGT-1B", "--vggt-model", help="--poses vggt: weights path or hub id."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier capture in --out."),
) -> None:
    """Pose photos (or a video's frames) with COLMAP or VGGT; the output is a capture for `fit` and `edit --data`."""
    from pydantic import ValidationError

    from rl3dedit.capture import CaptureConfig, CaptureError, run_capture

    try:
        config = CaptureConfig(poses=poses, matcher=matcher, camera_model=camera_model, video_frames=frames,
                               max_image_size=max_image_size, vggt_model=vggt_model)
    except ValidationError as exc:
        fail("; ".join(f"--{'-'.join(str(e['loc'][0]).split('_'))}: {e['msg']}" for e in exc.errors()))
    try:
        with _CaptureProgress() as progress:
            report = run_capture(source, out, config, overwrite=overwrite, progress=progress)
    except (CaptureError, FileNotFoundError, FileExistsError, ValueError) as exc:
        fail(str(exc))
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    width, height = report.image_size
    console.print(
        f"[bold green]done[/]: {out} ({len(report.registered)}/{report.num_images} images posed with {report.poses}, "
        f"{width}x{height}, {report.num_points} points). Next: rl3dedit fit --data {out} --out RUN, or "
        f"rl3dedit edit --data {out} ..."
    )

"""Helpers shared by the CLI commands: config resolution, console, errors."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rl3dedit.config import RunConfig, load_config, resolve_device  # noqa: F401  (re-exported for the commands)

console = Console(stderr=True)


def resolve_config(preset: str | None, config: Path | None) -> RunConfig:
    """The run config from `--config FILE` or `--preset NAME` (tiny when neither is given)."""
    if preset and config:
        raise typer.BadParameter("pass either --preset or --config, not both")
    try:
        return load_config(config if config else (preset or "tiny"))
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def fail(message: str, code: int = 1) -> None:
    """Print an error for the user and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)




class stage_progress:
    """A rich progress bar over the pipeline's stages; use as a context manager yielding the callback."""

    def __enter__(self):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self._progress.__enter__()
        self._task = None
        return self._update

    def _update(self, stage: str, index: int, total: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task(stage, total=total)
        self._progress.update(self._task, description=stage, completed=index)

    def __exit__(self, exc_type, exc, tb):
        if self._task is not None and exc_type is None:
            self._progress.update(self._task, description="done", completed=self._progress.tasks[0].total)
        return self._progress.__exit__(exc_type, exc, tb)

"""`rl3dedit train`: GRPO training of the grid editor (thin wrapper over `rl3dedit.rl.run_training`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail, resolve_config


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (checkpoints, TensorBoard logs, export/)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="tiny (CPU, random tiny models) or paper (GPU, real weights)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run config YAML, e.g. configs/tiny.yaml or configs/paper.yaml."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Training manifest YAML (default: rl.manifest, else the built-in synthetic one)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A folder prepared by `rl3dedit prepare` (prepared into it when unfinished)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many GRPO updates."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --out."),
    export_merged: bool = typer.Option(False, "--export-merged", help="Also write a merged single-file transformer."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda[:N]."),
) -> None:
    """Train the FLUX.1-Kontext grid editor with GRPO against the VGGT composite reward (paper §3.3-3.5)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rl3dedit.editor import MissingModelError
    from rl3dedit.rl import run_training

    cfg = resolve_config(preset, config)
    if device is not None:
        cfg = cfg.override("device", device)
    if max_steps is not None and max_steps < 1:
        fail(f"--max-steps must be >= 1, got {max_steps}")
    columns = (TextColumn("[bold]GRPO"), BarColumn(), TextColumn("{task.completed}/{task.total} updates"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    try:
        # Under `accelerate launch` every process runs this command; only rank 0 talks to the user.
        main_process = int(os.environ.get("RANK", "0")) == 0
        with Progress(*columns, console=console, disable=not main_process) as bar:
            task = bar.add_task("train", total=None, status="starting")

            def progress(done: int, total: int, metrics: dict) -> None:
                status = f"reward {metrics['reward/mean']:.4f} clipfrac {metrics.get('policy/clipfrac', 0.0):.3f}"
                bar.update(task, completed=done, total=total, status=status)

            result = run_training(cfg, out, manifest=manifest, data_dir=data, max_updates=max_steps, resume=resume,
                                  export_merged=export_merged, progress=progress)
    except (FileExistsError, FileNotFoundError, MissingModelError, ValueError) as exc:
        fail(str(exc))
    if not main_process:
        return
    console.print(f"[green]done[/]: {result.updates} updates in {result.run_dir}")
    if result.export_dir is not None:
        console.print(f"adapter: {result.export_dir / 'lora'}  (edit with --lora {result.export_dir / 'lora'})")

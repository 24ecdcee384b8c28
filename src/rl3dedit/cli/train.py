"""`rl3dedit train`: GRPO training of the grid editor (thin wrapper over `rl3dedit.rl.run_training`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import (
    config_option,
    console,
    device_option,
    fail,
    force_option,
    preset_option,
    resolve_config,
    set_option,
    start,
)

TRAIN_FLAGS = {"editor": "--editor-model", "transformer_file": "--transformer-file", "verifier": "--verifier-model"}


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (checkpoints, TensorBoard logs, export/)."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Training manifest YAML (default: rl.manifest, else the built-in synthetic one)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A folder written by `rl3dedit prepare`; an interrupted one is completed first (a folder prepare did not write is refused)."),
    max_updates: Optional[int] = typer.Option(None, "--max-updates", min=1, help="Stop after this many GRPO updates."),
    max_steps_alias: Optional[int] = typer.Option(None, "--max-steps", min=1, hidden=True),
    editor_model: Optional[str] = typer.Option(None, "--editor-model", help="FLUX.1-Kontext diffusers folder or hub id (editor.model)."),
    transformer_file: Optional[str] = typer.Option(None, "--transformer-file", help="Single-file base transformer (editor.transformer_file)."),
    verifier_model: Optional[str] = typer.Option(None, "--verifier-model", help="VGGT weights for the rewards (verifier.model)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed (seed)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --out."),
    export_merged: bool = typer.Option(False, "--export-merged", help="Also write a merged single-file transformer."),
    device: Optional[str] = device_option(),
    force: bool = force_option(),
) -> None:
    """Train the FLUX.1-Kontext grid editor with GRPO against the VGGT composite reward (paper §3.3-3.5)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rl3dedit.editor import MissingModelError
    from rl3dedit.rl import run_training
    from rl3dedit.rl.checkpoint import latest_checkpoint

    cfg = resolve_config(preset, config, sets, {
        "editor.model": editor_model, "editor.transformer_file": transformer_file, "verifier.model": verifier_model,
        "seed": seed, "device": device})
    max_steps = max_updates or max_steps_alias
    # The cheap check first: refusing an existing run must not wait for the models to load.
    if out.is_dir() and not resume and latest_checkpoint(out) is not None:
        fail(f"{out} already holds checkpoints; pass --resume to continue it or choose a new --out folder")
    check = start(cfg, "train", preset_given=bool(preset or config), force=force, flags=TRAIN_FLAGS, edit=False, train=True)
    columns = (TextColumn("[bold]GRPO"), BarColumn(), TextColumn("{task.completed}/{task.total} updates"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    mark = " (random models)" if check.random_models else ""
    try:
        # Under `accelerate launch` every process runs this command; only rank 0 talks to the user.
        main_process = int(os.environ.get("RANK", "0")) == 0
        with Progress(*columns, console=console, disable=not main_process) as bar:
            task = bar.add_task("train", total=None, status="starting")

            def progress(what: str, done: int, total: int | None, metrics: dict | None = None) -> None:
                metrics = metrics or {}
                status = f"reward {metrics.get('reward/mean', float('nan')):.4f}{mark} clipfrac {metrics.get('policy/clipfrac', 0.0):.3f}"
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

"""`rl3dedit prepare`: render every view set of a training manifest and precompute the anchor references."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail, resolve_config, resolve_device


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)


def prepare(
    manifest: Path = typer.Option(..., "--manifest", "-m", help="Training manifest YAML (scenes, prompts, view sets)."),
    out: Path = typer.Option(..., "--out", "-o", help="Prepared-data folder (resumable: finished items are kept)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="tiny or paper."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run config YAML instead of a preset."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda[:N]."),
) -> None:
    """Render the source views of every (view set, prompt) sample and edit each view alone (anchor references)."""
    from rl3dedit.editor import MissingModelError
    from rl3dedit.rl import load_manifest, prepare_dataset

    cfg = resolve_config(preset, config)
    if device is not None:
        cfg = cfg.override("device", device)
    try:
        parsed = load_manifest(manifest)
        with console.status("preparing") as status:
            def progress(item: str, done: int, total: int) -> None:
                status.update(f"prepared {done} samples (last: {item})")

            report = prepare_dataset(cfg, parsed, out, device=resolve_device(cfg.device), progress=progress)
    except (FileNotFoundError, MissingModelError, ValueError) as exc:
        fail(str(exc))
    console.print(f"[green]done[/]: {report.num_samples} samples, {report.num_view_sets} view sets in {report.out_dir}"
                  f" ({report.skipped} items were already prepared)")

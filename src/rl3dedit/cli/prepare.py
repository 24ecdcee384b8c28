"""`rl3dedit prepare`: render every view set of a training manifest and precompute the anchor references."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import (
    config_option,
    console,
    device_option,
    fail,
    preset_option,
    resolve_config,
    resolve_device,
    set_option,
    start,
)


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)


def prepare(
    manifest: Path = typer.Option(..., "--manifest", "-m", help="Training manifest YAML (scenes, prompts, view sets)."),
    out: Path = typer.Option(..., "--out", "-o", help="Prepared-data folder (resumable: finished items are kept)."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    editor_model: Optional[str] = typer.Option(None, "--editor-model", help="FLUX.1-Kontext diffusers folder or hub id (editor.model)."),
    transformer_file: Optional[str] = typer.Option(None, "--transformer-file", help="Single-file transformer (editor.transformer_file)."),
    device: Optional[str] = device_option(),
) -> None:
    """Render the source views of every (view set, prompt) sample and edit each view alone (anchor references)."""
    from rl3dedit.editor import MissingModelError
    from rl3dedit.rl import load_manifest, prepare_dataset

    cfg = resolve_config(preset, config, sets, {
        "editor.model": editor_model, "editor.transformer_file": transformer_file, "device": device})
    start(cfg, "prepare", preset_given=bool(preset or config), edit=False,
          flags={"editor": "--editor-model", "transformer_file": "--transformer-file"})
    try:
        parsed = load_manifest(manifest)
        with console.status("preparing") as status:
            def progress(item: str, done: int, total: int, metrics=None) -> None:
                status.update(f"prepared {done} samples (last: {item})")

            report = prepare_dataset(cfg, parsed, out, device=resolve_device(cfg.device), progress=progress)
    except (FileNotFoundError, MissingModelError, ValueError) as exc:
        fail(str(exc))
    console.print(f"[green]done[/]: {report.num_samples} samples, {report.num_view_sets} view sets in {report.out_dir}"
                  f" ({report.skipped} items were already prepared)")

"""`rl3dedit edit`: one instruction, one grid edit, one refit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import (
    config_option,
    console,
    device_option,
    fail,
    force_option,
    overwrite_option,
    preset_option,
    resolve_config,
    set_option,
    stage_progress,
    start,
)

EDIT_FLAGS = {"editor": "--editor-model", "transformer_file": "--transformer-file", "lora": "--lora",
              "verifier": "--verifier-model"}


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)


def edit(
    instruction: str = typer.Option(..., "--instruction", "-i", help="What to change, e.g. 'turn the bear into a panda'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (written atomically)."),
    scene: Optional[Path] = typer.Option(None, "--scene", help="INRIA 3DGS .ply (e.g. scene.ply from `rl3dedit fit`, or base/scene.ply of an earlier edit)."),
    cameras: Optional[Path] = typer.Option(None, "--cameras", help="Cameras for --scene: INRIA cameras.json, nerfstudio transforms.json or a COLMAP model."),
    data: Optional[Path] = typer.Option(None, "--data", help="A capture folder (nerfstudio or COLMAP), or a folder of bare photos (posed first, as by `rl3dedit capture`); a base 3DGS is fitted first (the 'fit' stage, kept in OUT/base/) unless --scene is given."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    editor_model: Optional[str] = typer.Option(None, "--editor-model", help="FLUX.1-Kontext diffusers folder or hub id."),
    transformer_file: Optional[str] = typer.Option(None, "--transformer-file", help="Single-file transformer (e.g. rl3dedit-flux-kontext.safetensors)."),
    lora: Optional[Path] = typer.Option(None, "--lora", help="LoRA adapter folder from `rl3dedit train` (RUN/export/lora)."),
    verifier_model: Optional[str] = typer.Option(None, "--verifier-model", help="VGGT weights: local model.pt/.safetensors, a folder, a hub id, or tiny."),
    edit_steps: Optional[int] = typer.Option(None, "--edit-steps", min=1, help="Denoising steps of the edit (editor.num_steps)."),
    steps_alias: Optional[int] = typer.Option(None, "--steps", min=1, hidden=True),
    guidance_scale: Optional[float] = typer.Option(None, "--guidance-scale", help="Embedded guidance of the edit (editor.guidance_scale)."),
    edit_seed: Optional[int] = typer.Option(None, "--edit-seed", help="Sampling seed of the edit (editor.seed)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed: base fit, refit (seed)."),
    downscale: Optional[int] = typer.Option(None, "--downscale", min=1, help="Image downscale of --data (scene.downscale)."),
    view_size: Optional[int] = typer.Option(None, "--view-size", min=16, help="Longer side of the edited views in pixels (views.view_size)."),
    num_views: Optional[int] = typer.Option(None, "--views", min=1, help="Views to edit (views.num_views, default 9 = one 3x3 grid); more are edited in grids along the camera path, each later grid holding views.anchor_cells already-edited views."),
    candidates: Optional[int] = typer.Option(None, "--candidates", min=1, help="Edit N candidates with different seeds and keep the most consistent (editor.candidates; default 1)."),
    fit_iters: Optional[int] = typer.Option(None, "--fit-iters", min=1, help="Steps of the base fit of --data (recon.fit_iters)."),
    fit_cache: Optional[Path] = typer.Option(None, "--fit-cache", help="Folder where base fits of --data captures are kept and reused, keyed by capture and fit settings (default: ~/.cache/rl3dedit/fits, or $XDG_CACHE_HOME/rl3dedit/fits)."),
    no_fit_cache: bool = typer.Option(False, "--no-fit-cache", help="Neither reuse nor keep a cached base fit."),
    refit_iters: Optional[int] = typer.Option(None, "--refit-iters", min=1, help="Steps of the refit to the edited views (recon.refit_iters)."),
    device: Optional[str] = device_option(),
    enhance: bool = typer.Option(False, "--enhance", help="Rewrite the instruction with an OpenAI-compatible LLM (editor.prompt_mode=enhance; OPENAI_API_KEY, or OPENAI_BASE_URL for a local server); falls back to the grid template."),
    overwrite: bool = overwrite_option(),
    view: bool = typer.Option(False, "--view", help="Open the result in the web viewer (rl3dedit view) when the job ends."),
    force: bool = force_option(),
) -> None:
    """Render 9 views, edit them as one grid, split, verify consistency, refit the 3DGS, render a turntable."""
    from rl3dedit.pipeline import OutputExistsError, run_edit

    cfg = resolve_config(preset, config, sets, {
        "editor.model": editor_model, "editor.transformer_file": transformer_file,
        "editor.lora": str(lora) if lora else None, "verifier.model": verifier_model,
        "editor.num_steps": edit_steps or steps_alias, "editor.guidance_scale": guidance_scale,
        "editor.seed": edit_seed, "seed": seed, "scene.downscale": downscale, "views.view_size": view_size,
        "views.num_views": num_views, "editor.candidates": candidates,
        "recon.fit_iters": fit_iters, "recon.refit_iters": refit_iters, "device": device,
        "editor.prompt_mode": "enhance" if enhance else None,
    })
    from rl3dedit.pipeline.source import scene_source_from_flags

    try:
        source = scene_source_from_flags(scene=scene, cameras=cameras, data=data)
    except ValueError as exc:
        fail(str(exc))
    start(cfg, "edit", preset_given=bool(preset or config), out=out, overwrite=overwrite, force=force,
          flags=EDIT_FLAGS, fit=data is not None and scene is None)
    try:
        with stage_progress() as progress:
            report = run_edit(
                cfg, instruction=instruction, out_dir=out, source=source, overwrite=overwrite, progress=progress,
                fit_cache=None if no_fit_cache else (fit_cache or default_fit_cache()),
            )
    except (OutputExistsError, FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    print_edit_summary(report, cfg)
    if view:
        from rl3dedit.cli.view import view_edit_report

        view_edit_report(report)


def default_fit_cache() -> Path:
    """Where base fits of captures are kept between edits: $XDG_CACHE_HOME/rl3dedit/fits (~/.cache/...)."""
    from rl3dedit.files import user_cache_dir

    return user_cache_dir() / "fits"


def print_edit_summary(report, config) -> None:
    """Stage times, the consistency scores (marked when they come from the random tiny verifier), where it went."""
    import re

    from rich.table import Table

    table = Table(title="stages", show_header=True)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in report.timings.items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)
    prompt = report.metrics.get("prompt", "")
    if len(re.findall(r"\w+|[^\w\s]", prompt)) > 75:
        console.print(f"note: the prompt is longer than CLIP's 77 tokens: CLIP reads its start, T5 reads up to "
                      f"{config.editor.max_sequence_length} tokens")
    if report.metrics.get("base_fit_reused"):
        console.print("base fit: reused from the fit cache (--no-fit-cache refits)")
    chosen = report.metrics.get("candidates", {})
    if chosen.get("reason"):
        console.print(f"candidates: {chosen['reason']}", highlight=False)
    consistency = report.metrics.get("consistency", {})
    if "edited" in consistency:
        mark = " (random tiny verifier: checks the pipeline, not a measurement)" if config.verifier.model == "tiny" else ""
        console.print(
            "consistency (VGGT, higher is better): source {:.3f} -> edited {:.3f}{}".format(
                consistency["source"]["total"], consistency["edited"]["total"], mark
            ), highlight=False,
        )
    console.print(f"[bold green]done[/]: {report.out_dir} (edited.ply, views/source/, views/edited/, cameras.json, "
                  "grids, before_after.png, turntable.mp4, metrics.json)")

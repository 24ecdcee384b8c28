"""`rl3dedit edit`: one instruction, one grid edit, one refit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail, resolve_config, stage_progress


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)


def edit(
    instruction: str = typer.Option(..., "--instruction", "-i", help="What to change, e.g. 'turn the bear into a panda'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (written atomically)."),
    scene: Optional[Path] = typer.Option(None, "--scene", help="INRIA 3DGS .ply."),
    cameras: Optional[Path] = typer.Option(None, "--cameras", help="Cameras for --scene: INRIA cameras.json, nerfstudio transforms.json or a COLMAP model."),
    data: Optional[Path] = typer.Option(None, "--data", help="A capture folder (nerfstudio or COLMAP); a base 3DGS is fitted first unless --scene is given."),
    preset: Optional[str] = typer.Option(None, "--preset", help="tiny (CPU, random tiny models) or paper (GPU, real weights)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run config YAML instead of a preset."),
    editor_model: Optional[str] = typer.Option(None, "--editor-model", help="FLUX.1-Kontext diffusers folder or hub id."),
    transformer_file: Optional[str] = typer.Option(None, "--transformer-file", help="Single-file transformer (e.g. rl3dedit-flux-kontext.safetensors)."),
    lora: Optional[Path] = typer.Option(None, "--lora", help="LoRA adapter folder from `rl3dedit train`."),
    verifier: Optional[str] = typer.Option(None, "--verifier-model", help="VGGT weights: local model.pt/.safetensors or hub id."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Editor seed."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda[:N]."),
    enhance: bool = typer.Option(False, "--enhance", help="Rewrite the instruction with an OpenAI-compatible LLM (OPENAI_API_KEY); falls back to the template."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier rl3dedit run in --out."),
) -> None:
    """Render 9 views, edit them as one grid, split, verify consistency, refit the 3DGS, render a turntable."""
    from rl3dedit.pipeline import OutputExistsError, run_edit, scene_source_from_flags

    cfg = resolve_config(preset, config)
    for dotted, value in (
        ("editor.model", editor_model), ("editor.transformer_file", transformer_file),
        ("editor.lora", str(lora) if lora else None), ("verifier.model", verifier),
        ("editor.num_steps", steps), ("editor.seed", seed), ("device", device),
    ):
        if value is not None:
            cfg = cfg.override(dotted, value)
    if data is None and (scene is None or cameras is None):
        fail("give --data CAPTURE, or both --scene PLY and --cameras FILE")
    if enhance:
        from rl3dedit.editor import enhance_instruction

        instruction = enhance_instruction(instruction, rows=cfg.views.rows, cols=cfg.views.cols)
        console.print(f"instruction rewritten: {instruction}")
    try:
        with stage_progress() as progress:
            report = run_edit(
                cfg, instruction=instruction, out_dir=out,
                source=scene_source_from_flags(scene=scene, cameras=cameras, data=data),
                overwrite=overwrite, progress=progress,
            )
    except (OutputExistsError, FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    print_edit_summary(report)


def print_edit_summary(report) -> None:
    from rich.table import Table

    table = Table(title="stages", show_header=True)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in report.timings.items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)
    consistency = report.metrics.get("consistency", {})
    if "edited" in consistency:
        console.print(
            "consistency (VGGT, higher is better): source {:.3f} -> edited {:.3f}".format(
                consistency["source"]["total"], consistency["edited"]["total"]
            )
        )
    console.print(f"[bold green]done[/]: {report.out_dir} (edited.ply, views/, grids, before_after.png, turntable.mp4, metrics.json)")

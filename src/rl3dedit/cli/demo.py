"""`rl3dedit demo`: the whole edit job on a synthetic scene with a preset (tiny by default): no GPU, no downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail, resolve_config, stage_progress

DEMO_INSTRUCTION = "make the red object blue"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Output folder (replaced if it holds an earlier run)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Preset (default tiny)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run config YAML instead of a preset."),
    instruction: str = typer.Option(DEMO_INSTRUCTION, "--instruction", "-i"),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic scene."),
) -> None:
    """Edit a synthetic scene end to end: views, grid edit, verification, refit, turntable, report files."""
    from rl3dedit.pipeline import OutputExistsError, run_edit
    from rl3dedit.synthetic import make_synthetic_capture

    cfg = resolve_config(preset, config)
    if cfg.editor.model == "tiny":
        console.print(
            "[bold yellow]note:[/] the tiny preset uses tiny randomly initialised models of the real architectures. "
            "It checks the pipeline end to end; it does not edit meaningfully (expect noise, not your edit). "
            "Use --preset paper on a GPU with the FLUX.1-Kontext and VGGT weights for real edits."
        )
    scene, capture = make_synthetic_capture(num_views=24, size=cfg.views.view_size, seed=seed)
    try:
        with stage_progress() as progress:
            report = run_edit(
                cfg, instruction=instruction, out_dir=out, scene=scene, cameras=capture.cameras,
                turntable_frames=24, overwrite=True, progress=progress,
            )
    except (OutputExistsError, ValueError, OSError) as exc:
        fail(str(exc))
    from rl3dedit.cli.edit import print_edit_summary

    print_edit_summary(report)

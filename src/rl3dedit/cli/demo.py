"""`rl3dedit demo`: the whole edit job on a synthetic scene with a preset (tiny by default): no GPU, no downloads."""

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
    preset_option,
    resolve_config,
    set_option,
    stage_progress,
    start,
)

DEMO_INSTRUCTION = "make the red object blue"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Output folder."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    instruction: str = typer.Option(DEMO_INSTRUCTION, "--instruction", "-i", help="The edit instruction."),
    scene_seed: int = typer.Option(0, "--scene-seed", help="Seed of the synthetic scene."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed: refit (seed)."),
    device: Optional[str] = device_option(),
    overwrite: bool = typer.Option(True, "--overwrite/--no-overwrite", help="Replace an earlier rl3dedit run in "
                                   "--out (the demo does by default, and says so; other folders are never replaced)."),
    force: bool = force_option(),
) -> None:
    """Edit a synthetic scene end to end: views, grid edit, verification, refit, turntable, report files."""
    from rl3dedit.pipeline import OutputExistsError, run_edit
    from rl3dedit.pipeline.outputs import RUN_MARKER
    from rl3dedit.synthetic import make_synthetic_capture

    cfg = resolve_config(preset, config, sets, {"seed": seed, "device": device})
    start(cfg, "demo", preset_given=bool(preset or config), out=out, overwrite=overwrite, force=force)
    if cfg.editor.model == "tiny":
        console.print(
            "[bold yellow]note:[/] the tiny preset uses tiny randomly initialised models of the real architectures. "
            "It checks the pipeline end to end; it does not edit meaningfully (expect noise, not your edit). "
            "Use --preset paper on a GPU with the FLUX.1-Kontext and VGGT weights for real edits."
        )
    if (out / RUN_MARKER).exists():
        console.print(f"replacing the earlier run in {out} (--no-overwrite keeps it)")
    scene, capture = make_synthetic_capture(num_views=24, size=cfg.views.view_size, seed=scene_seed)
    try:
        with stage_progress() as progress:
            report = run_edit(
                cfg, instruction=instruction, out_dir=out, scene=scene, cameras=capture.cameras,
                turntable_frames=24, overwrite=overwrite, progress=progress,
            )
    except (OutputExistsError, ValueError, OSError) as exc:
        fail(str(exc))
    from rl3dedit.cli.edit import print_edit_summary

    print_edit_summary(report, cfg)

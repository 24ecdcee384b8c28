"""`rl3dedit render`: render views of a 3DGS .ply from a camera file to PNGs (and optionally one grid image)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import console, fail, resolve_config, resolve_device
from rl3dedit.pipeline.outputs import OutputExistsError, atomic_run_dir, check_output_dir


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)


def _grid_shape(count: int) -> tuple[int, int]:
    """Near-square (rows, cols) holding `count` views (3 x 3 for the paper's 9)."""
    rows = max(1, int(math.sqrt(count)))
    return rows, math.ceil(count / rows)


def render_command(
    scene: Path = typer.Option(..., "--scene", help="INRIA 3DGS .ply."),
    cameras: Path = typer.Option(..., "--cameras", help="Cameras: INRIA cameras.json, nerfstudio transforms.json or a COLMAP model."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for view_NN_camIII.png (NN: rank, III: camera index) and grid.png, written atomically."),
    views: int = typer.Option(9, "--views", min=0, help="How many well-spread views to render (views.select_views); 0 renders every camera."),
    grid: bool = typer.Option(False, "--grid", help="Also tile the views row-major into grid.png."),
    size: Optional[int] = typer.Option(None, "--size", min=8, help="Longer image side in pixels (default: the cameras' size)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="tiny or paper (background, grid layout, device)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run config YAML instead of a preset."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda[:N]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
) -> None:
    """Render a Gaussian scene from selected cameras to PNG files."""
    import torch

    from rl3dedit.render import render
    from rl3dedit.scene import load_cameras, read_ply
    from rl3dedit.views import save_image, select_views, tile

    cfg = resolve_config(preset, config)
    if device is not None:
        cfg = cfg.override("device", device)
    try:
        check_output_dir(out, overwrite=overwrite)
    except OutputExistsError as exc:
        fail(str(exc))
    try:
        gaussians = read_ply(scene)
        all_cameras = load_cameras(cameras)
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    indices = list(range(len(all_cameras))) if views == 0 else select_views(all_cameras, views)
    chosen = all_cameras[indices]
    if size is not None:
        longer = max(chosen.width, chosen.height)
        chosen = chosen.rescaled(max(1, round(chosen.width * size / longer)), max(1, round(chosen.height * size / longer)))
    target = resolve_device(cfg.device)
    console.print(f"rendering {len(chosen)} views of {gaussians.num_gaussians} Gaussians at {chosen.width}x{chosen.height}")
    with torch.no_grad():
        images = torch.cat([
            render(gaussians.to(target), chosen[[i]].to(target), mode="RGB", background=cfg.render.background,
                   backend=cfg.render.backend).rgb.clamp(0, 1).cpu()
            for i in range(len(chosen))
        ])

    with atomic_run_dir(out, overwrite=overwrite) as staging:
        for rank, (index, image) in enumerate(zip(indices, images)):
            save_image(image, staging / f"view_{rank:02d}_cam{index:03d}.png")
        if grid:
            rows, cols = _grid_shape(len(images))
            save_image(tile(images, rows=rows, cols=cols, layout=cfg.views.layout), staging / "grid.png")
    console.print(f"[bold green]done[/]: {len(images)} views{' and grid.png' if grid else ''} in {out}")

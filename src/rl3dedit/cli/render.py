"""`rl3dedit render`: render a 3DGS .ply from its cameras (each camera once) or along a nerfstudio camera path.

Outputs: `views/view_NN_camIII.png` (NN: rank, III: camera index) and `cameras.json` (exactly the rendered views,
at the rendered size, in the files' order), `grid.png` with `--grid`; with `--camera-path`, `frames/frame_NNNNN.png`,
`video.mp4` and `cameras.json` of the frames. `rl3dedit score OUT` reads the views and their cameras from OUT.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import (
    config_option,
    console,
    device_option,
    fail,
    overwrite_option,
    preset_option,
    resolve_config,
    resolve_device,
    set_option,
    start,
)
from rl3dedit.pipeline.outputs import atomic_run_dir


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)


def _grid_shape(count: int) -> tuple[int, int]:
    """Near-square (rows, cols) holding `count` views (3 x 3 for the paper's 9)."""
    rows = max(1, int(math.sqrt(count)))
    return rows, math.ceil(count / rows)


def _camera_path(path: Path, data: Path):
    from rl3dedit.scene.nerfstudio import read_camera_path, read_transforms_json

    transforms = data / "transforms.json"
    if not transforms.is_file():
        raise ValueError(f"--camera-path needs --data to be a nerfstudio capture (with transforms.json); {data} "
                         "has none")
    return read_camera_path(path, read_transforms_json(transforms))


def render_command(
    scene: Path = typer.Option(..., "--scene", help="INRIA 3DGS .ply (e.g. scene.ply from `rl3dedit fit`)."),
    cameras: Optional[Path] = typer.Option(None, "--cameras", help="Cameras: INRIA cameras.json, nerfstudio "
                                           "transforms.json or a COLMAP model."),
    data: Optional[Path] = typer.Option(None, "--data", help="A capture folder: its cameras (instead of --cameras), "
                                        "and the world frame of --camera-path."),
    camera_path: Optional[Path] = typer.Option(None, "--camera-path", help="A nerfstudio camera path (e.g. CAPTURE/"
                                               "camera_paths/*.json; needs --data CAPTURE): every frame to frames/ "
                                               "and video.mp4."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (views/, cameras.json, grid.png; written "
                             "atomically)."),
    views: int = typer.Option(9, "--views", min=0, help="How many well-spread cameras to render, each once (fewer "
                              "when there are fewer cameras); 0 renders every camera."),
    grid: bool = typer.Option(False, "--grid", help="Also tile the views row-major into grid.png."),
    view_size: Optional[int] = typer.Option(None, "--view-size", min=8, help="Longer image side in pixels "
                                            "(default: the cameras' size)."),
    size_alias: Optional[int] = typer.Option(None, "--size", min=8, hidden=True),
    fps: int = typer.Option(24, "--fps", min=1, help="Frame rate of video.mp4 (--camera-path)."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    device: Optional[str] = device_option(),
    overwrite: bool = overwrite_option(),
) -> None:
    """Render a Gaussian scene from selected cameras (or a camera path) to PNG files, with their cameras."""
    from rl3dedit.render import render_images
    from rl3dedit.scene import load_cameras, read_ply, write_cameras_json
    from rl3dedit.views import save_image, select_views, tile

    view_size = view_size or size_alias
    cfg = resolve_config(preset, config, sets, {"device": device})
    start(cfg, "render", preset_given=bool(preset or config), out=out, overwrite=overwrite, roles=(), edit=False)
    if sum(x is not None for x in (cameras, camera_path)) == 0 and data is None:
        fail("give the cameras: --cameras FILE, --data CAPTURE, or --camera-path PATH --data CAPTURE")
    if cameras is not None and camera_path is not None:
        fail("pass either --cameras or --camera-path, not both")
    if camera_path is not None and data is None:
        fail("--camera-path needs --data CAPTURE (the capture whose world the path was drawn in)")
    try:
        gaussians = read_ply(scene)
        if camera_path is not None:
            all_cameras = _camera_path(camera_path, data)
        else:
            all_cameras = load_cameras(cameras if cameras is not None else data)  # a capture: its transforms.json first
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    if camera_path is not None:
        indices = list(range(len(all_cameras)))
    else:
        count = len(all_cameras) if views == 0 else min(views, len(all_cameras))
        if 0 < len(all_cameras) < views:
            console.print(f"note: {len(all_cameras)} cameras for --views {views}: rendering each camera once")
        indices = select_views(all_cameras, count)
    chosen = all_cameras[indices]
    if view_size is not None:
        from rl3dedit.pipeline import render_size

        chosen = chosen.rescaled(*render_size(chosen, view_size))
    target = resolve_device(cfg.device)
    console.print(f"rendering {len(chosen)} {'frames' if camera_path else 'views'} of {gaussians.num_gaussians} "
                  f"Gaussians at {chosen.width}x{chosen.height}")
    images = render_images(gaussians.to(target), chosen.to(target), cfg.render.background,
                           backend=cfg.render.backend, chunk_size=cfg.render.chunk_size).cpu()

    with atomic_run_dir(out, overwrite=overwrite) as staging:
        write_cameras_json(chosen.to("cpu"), staging / "cameras.json")
        if camera_path is not None:
            from rl3dedit.pipeline.edit import write_video

            (staging / "frames").mkdir()
            for i, image in enumerate(images):
                save_image(image, staging / "frames" / f"frame_{i:05d}.png")
            write_video(images, staging / "video.mp4", fps=fps)
        else:
            (staging / "views").mkdir()
            for rank, (index, image) in enumerate(zip(indices, images)):
                save_image(image, staging / "views" / f"view_{rank:02d}_cam{index:03d}.png")
        if grid:
            rows, cols = _grid_shape(len(images))
            save_image(tile(images, rows=rows, cols=cols, layout=cfg.views.layout), staging / "grid.png")
    what = f"{len(images)} frames (frames/, video.mp4)" if camera_path else f"{len(images)} views (views/)"
    console.print(f"[bold green]done[/]: {what}, cameras.json{' and grid.png' if grid else ''} in {out}")

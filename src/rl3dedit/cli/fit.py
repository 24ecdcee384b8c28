"""`rl3dedit fit`: fit a base 3DGS to a capture folder and write scene.ply, cameras.json, metrics.json and the
held-out views (ground truth beside the render, as gsplat's and nerfstudio's trainers show them)."""

from __future__ import annotations

import time
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
from rl3dedit.files import destination_lock, write_json
from rl3dedit.pipeline.outputs import atomic_run_dir
from rl3dedit.provenance import provenance


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)


class _FitProgress:
    """A rich progress bar (with an ETA) driven by `recon.fit`'s progress callback; without a terminal (logs, CI)
    one line at most every `LOG_EVERY_S` seconds instead."""

    LOG_EVERY_S = 5.0

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]fit"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        )
        self._progress.__enter__()
        self._task = None
        self._logged_at = None
        return self._update

    def _update(self, what: str, iteration: int, total: int, info: dict[str, float] | None = None) -> None:
        info = info or {}
        if self._task is None:
            self._task = self._progress.add_task("fit", total=total, info="")
        text = f"loss {info['loss']:.4f}  {int(info['num_gaussians'])} Gaussians"
        if "holdout_psnr" in info:
            self._last_psnr = info["holdout_psnr"]
        if getattr(self, "_last_psnr", None) is not None:
            text += f"  held-out {self._last_psnr:.2f} dB"
        self._progress.update(self._task, completed=iteration, info=text)
        now = time.monotonic()
        if not console.is_terminal and (self._logged_at is None or now - self._logged_at >= self.LOG_EVERY_S
                                        or iteration == total):
            self._logged_at = now
            console.log(f"fit step {iteration}/{total}: {text}")

    def __exit__(self, exc_type, exc, tb):
        return self._progress.__exit__(exc_type, exc, tb)


def fit_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Capture folder: nerfstudio (transforms.json) or COLMAP (sparse/0 + images/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for scene.ply, cameras.json, metrics.json, holdout/ (written atomically)."),
    downscale: Optional[int] = typer.Option(None, "--downscale", min=1, help="Integer image downscale (default: scene.downscale of the config)."),
    fit_iters: Optional[int] = typer.Option(None, "--fit-iters", min=1, help="Optimisation steps (default: recon.fit_iters of the config)."),
    iters_alias: Optional[int] = typer.Option(None, "--iters", min=1, hidden=True),
    holdout_every: int = typer.Option(8, "--holdout-every", min=0, help="Hold out every N-th frame for evaluation (0: none)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed (initialisation, view order)."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    device: Optional[str] = device_option(),
    overwrite: bool = overwrite_option(),
    force: bool = typer.Option(False, "--force", help="Run even when the preflight estimates a GPU-sized fit on a CPU."),
) -> None:
    """Fit a 3DGS scene to posed images; every 8th frame is held out and scored (PSNR/SSIM), and written to holdout/
    as ground truth | render."""
    import torch

    from rl3dedit.config import dump_config
    from rl3dedit.recon import fit, holdout_split
    from rl3dedit.render import render_images
    from rl3dedit.scene import load_capture, write_cameras_json, write_ply
    from rl3dedit.views import save_image

    cfg = resolve_config(preset, config, sets, {
        "scene.downscale": downscale, "recon.fit_iters": fit_iters or iters_alias, "seed": seed, "device": device})
    start(cfg, "fit", preset_given=bool(preset or config), out=out, overwrite=overwrite, force=force, roles=(),
          fit=True, edit=False)
    # --out stays locked for the whole fit: a second fit into it is refused now, not after its own fit
    ctx.with_resource(destination_lock(Path(out).expanduser().resolve()))
    try:
        capture = load_capture(data, downscale=cfg.scene.downscale)
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(f"cannot load the capture: {exc}")
    console.print(f"capture {capture.name}: {len(capture)} views at {capture.cameras.width}x{capture.cameras.height}, "
                  f"{0 if capture.points is None else capture.points.shape[0]} SfM points")
    try:
        with _FitProgress() as progress:
            result = fit(capture, cfg.recon, device=resolve_device(cfg.device), seed=cfg.seed,
                         holdout_every=holdout_every, background=cfg.render.background, progress=progress)
    except ValueError as exc:
        fail(str(exc))
    _, holdout_ids = holdout_split(len(capture), holdout_every)
    renders = (render_images(result.scene, capture.cameras[holdout_ids], cfg.render.background,
                             backend=cfg.render.backend, chunk_size=cfg.render.chunk_size)
               if holdout_ids else None)

    holdout_lpips = _holdout_lpips(cfg, capture.images[holdout_ids], renders) if renders is not None else None
    if holdout_lpips is not None:
        result.metrics["holdout_lpips"] = holdout_lpips

    with atomic_run_dir(out, overwrite=overwrite) as staging:
        write_ply(result.scene, staging / "scene.ply")
        write_cameras_json(capture.cameras, staging / "cameras.json")
        if renders is not None:
            (staging / "holdout").mkdir()
            for index, render in zip(holdout_ids, renders):
                truth = capture.images[index].to(render.dtype)
                save_image(torch.cat([truth, render], dim=2), staging / "holdout" / f"view_{index:03d}_gt_render.png")
        metrics = dict(result.metrics, capture=str(Path(data).expanduser().resolve()), downscale=cfg.scene.downscale,
                       holdout_every=holdout_every, holdout_views=holdout_ids,
                       history=[step._asdict() for step in result.history], provenance=provenance())
        write_json(staging / "metrics.json", metrics)
        dump_config(cfg, staging / "config.yaml")
    m = result.metrics
    lpips = f", LPIPS {m['holdout_lpips']:.3f}" if "holdout_lpips" in m else ""
    held = (f"held-out PSNR {m['holdout_psnr']:.2f} dB, SSIM {m['holdout_ssim']:.3f}{lpips} (holdout/: ground truth | "
            "render)" if "holdout_psnr" in m else "no held-out views")
    console.print(f"[bold green]done[/]: {out} ({m['num_gaussians']} Gaussians, {held}, {m['wall_time_s']:.1f} s)")


def _holdout_lpips(cfg, truth, renders) -> float | None:
    """Mean LPIPS (AlexNet) of the held-out renders when real LPIPS weights are configured (rewards.lpips_weights),
    else None: random LPIPS weights would give a number that means nothing."""
    import torch

    if cfg.rewards.lpips_weights is None or min(truth.shape[-2:]) < 32:
        return None
    from rl3dedit.rewards.lpips import load_lpips

    model = load_lpips(cfg.rewards.lpips_weights, cfg.rewards.lpips_backbone_weights)
    with torch.no_grad():
        return float(model(truth.to(renders.dtype), renders).mean())

"""Base 3DGS fit from posed images (`fit`) and the result type shared with `refit`.

Recipe (gsplat simple_trainer, docs/references.md §5): Gaussians seeded from the capture's SfM
points (random in the view frustums when it has none), kNN scales, Adam per parameter, loss
(1 - 0.2) L1 + 0.2 (1 - SSIM), densification (gsplat DefaultStrategy on CUDA, our clone/split/prune elsewhere).
Every `holdout_every`-th frame (0, 8, 16, ...) is held out for evaluation, as gsplat's `test_every=8`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rl3dedit.progress import Progress
from rl3dedit.recon.config import ReconConfig
from rl3dedit.recon.densify import make_densifier
from rl3dedit.recon.init import init_scene, initial_points, scene_extent
from rl3dedit.recon.loop import FitStep, LoopSettings, Views, optimise, score_views
from rl3dedit.recon.optim import learning_rates, make_splats
from rl3dedit.render.config import RenderConfig
from rl3dedit.scene import Capture, GaussianScene

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """A fitted scene and how well it fits.

    Fields:
        scene: the optimised Gaussians, detached, on the CPU.
        metrics: "train_psnr", "train_ssim" (up to 16 evenly spaced fitted views), "holdout_psnr", "holdout_ssim" (when there are
            held-out views), "wall_time_s" (whole call), "train_time_s" (optimisation steps only), "iters",
            "num_gaussians", "num_train_views", "num_holdout_views".
        history: one `FitStep` (iteration, seconds, loss, held-out PSNR) per evaluation.
        snapshots: iteration -> the scene after that many steps (detached, CPU), for the requested iterations.
    """

    scene: GaussianScene
    metrics: dict[str, Any]
    history: list[FitStep] = field(default_factory=list)
    snapshots: dict[int, GaussianScene] = field(default_factory=dict)


def holdout_split(num_views: int, holdout_every: int) -> tuple[list[int], list[int]]:
    """(train, holdout) view indices: every `holdout_every`-th view (0, k, 2k, ...) is held out; 0 holds out none."""
    if holdout_every < 0:
        raise ValueError(f"holdout_every must be >= 0, got {holdout_every}")
    holdout = list(range(0, num_views, holdout_every)) if holdout_every > 0 else []
    train = [i for i in range(num_views) if i not in set(holdout)]
    if not train:
        raise ValueError(f"holdout_every={holdout_every} leaves no training view among {num_views}")
    return train, holdout


def background_tensor(background: tuple[float, float, float], device: torch.device) -> torch.Tensor:
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    if bg.shape != (3,) or not ((bg >= 0) & (bg <= 1)).all():
        raise ValueError(f"background must be three values in [0, 1], got {background}")
    return bg


def final_metrics(
    scene: GaussianScene, train: Views, holdout: Views | None, background: torch.Tensor,
    render_config: RenderConfig | None = None, max_train_views: int = 16,
) -> dict[str, Any]:
    """Train and held-out PSNR/SSIM; training views are scored on at most `max_train_views`, evenly spaced."""
    if len(train) > max_train_views:
        picks = torch.linspace(0, len(train) - 1, max_train_views).round().long().tolist()
        train = Views(train.cameras[picks], train.images[picks])
    scores = score_views(scene, train, background, render_config)
    metrics: dict[str, Any] = {"train_psnr": scores.psnr, "train_ssim": scores.ssim}
    if holdout is not None and len(holdout):
        held = score_views(scene, holdout, background, render_config)
        metrics.update(holdout_psnr=held.psnr, holdout_ssim=held.ssim)
    return metrics


def fit(
    capture: Capture,
    config: ReconConfig,
    *,
    iters: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    holdout_every: int = 8,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    progress: Progress | None = None,
    snapshots: Sequence[int] = (),
    render: RenderConfig | None = None,
) -> FitResult:
    """Fit a 3DGS scene to a capture's posed images.

    Args:
        capture: V posed images (V, 3, H, W) in [0, 1], OpenCV world-to-camera cameras, optional SfM points.
        config: learning rates, densification and SH settings; `config.fit_iters` steps unless `iters` is given.
        device: where to optimise ("cpu", "cuda"); the CPU uses our rasterizer and CPU densification.
        seed: seeds initialisation, view order and splits.
        holdout_every: every k-th view is held out of training and scored (0: train on all).
        background: RGB in [0, 1] behind the Gaussians (the synthetic captures use white).
        progress: optional `progress("fit", iteration, total, metrics)` after each step.
        snapshots: iterations after which to keep a copy of the scene (`FitResult.snapshots`).
        render: backend and chunk size of every render (default `RenderConfig()`).
    Returns:
        FitResult with the scene on the CPU, metrics (held-out PSNR/SSIM, wall time) and the PSNR history.
    """
    started = time.perf_counter()
    device = torch.device(device)
    steps = config.fit_iters if iters is None else iters
    if steps < 1:
        raise ValueError(f"fit: iters must be >= 1, got {steps}")
    generator = torch.Generator().manual_seed(seed)
    train_ids, holdout_ids = holdout_split(len(capture), holdout_every)
    cameras = capture.cameras.to(device)
    images = capture.images.to("cpu", torch.float32)  # stays on the host (`Views`); batches move per step
    train = Views(cameras[train_ids], images[train_ids])
    holdout = Views(cameras[holdout_ids], images[holdout_ids]) if holdout_ids else None
    logger.info("fitting %s: %d training and %d held-out views at %dx%d", capture.name, len(train_ids),
                len(holdout_ids), cameras.width, cameras.height)

    extent = scene_extent(capture.cameras)
    points, colors = initial_points(
        capture.points, capture.point_colors, train.cameras.to("cpu"), max_points=config.max_init_points,
        random_points=config.random_init_points, generator=generator,
    )
    initial = init_scene(points, colors, sh_degree=config.sh_degree, init_opacity=config.init_opacity,
                         init_scale=config.init_scale, generator=generator)
    rates = learning_rates(config, extent)
    splats = make_splats(initial, rates, device)
    bg = background_tensor(background, device)
    settings = LoopSettings(iters=steps, rates=rates, background=bg, seed=seed, max_sh_degree=config.sh_degree,
                            holdout=holdout, snapshot_at=frozenset(snapshots), render=render or RenderConfig())
    densifier = make_densifier(config.densify, config, extent, device, generator)
    train_seconds = optimise(splats, train, config, settings, densifier, progress)

    scene = splats.detached_scene()
    metrics = final_metrics(scene.to(device), train, holdout, bg, settings.render)
    metrics.update(
        wall_time_s=time.perf_counter() - started, train_time_s=train_seconds, iters=steps,
        num_gaussians=scene.num_gaussians, num_train_views=len(train_ids), num_holdout_views=len(holdout_ids),
    )
    return FitResult(scene=scene, metrics=metrics, history=settings.history, snapshots=settings.snapshots)

"""Warm-started refit of a source scene to M edited views (paper spec 3.2: 3,000 iterations, original cameras).

The paper warm-starts from AnySplat and runs standard 3DGS optimisation with default learning-rate schedules; we
warm-start from the source scene, which already explains every view, and fit the M edited views with the same loss
and rates. To keep regions the edit did not touch stable:
- no densification by default (`refit_densify` False): the Gaussian set, and so the untouched regions, stay as
  they were, and no Gaussians are grown to explain one view's inconsistencies;
- an anchor `refit_anchor_weight` x sum_p mean((p - p_source)^2) on the geometry (means divided by the scene
  extent, log-scales, quats): Gaussians seen in few of the M views cannot slide or swell to fit them. Colours and
  opacities are not anchored, so appearance edits reach their target (an appearance anchor would settle at a
  compromise between source and edit);
- `refit_geometry_lr_scale` can slow geometry further; its default is 1 because 0.1 made edits land less well
  without reducing drift on held-out views.
Measured (stone_horse, 64 px, 300 steps; benchmarks/RESULTS.md): a refit to the scene's own renders keeps
held-out views at 44-48 dB PSNR of their source renders; after a consistent recolouring edit, held-out pixels
outside the edit move by 0.008-0.009 on average (0-1 scale) for anchor weights 0-1000, while a stronger anchor lands
the edit less well: the weight trades stability against edit fidelity.

Converging in a tenth of the paper's steps (ours): before any gradient step, `refit_color_init_iters` closed-form
passes (`closed_form_colors`) move each Gaussian's DC colour by the render-weight-weighted mean residual of the
pixels it covers in all M edited views. Adam at gsplat's colour rate needs thousands of steps for a large colour
change; these passes make it in a few renders, and leave Gaussians whose pixels already match untouched. Oracle
recolour of stone_horse (64 px, M = 9, `benchmarks/oracle_refit.py`): novel-view PSNR 39.8 dB after 100 steps with
the passes, against 22.2 dB after 300 steps without them; preservation outside the edit 43.7 dB. Faster appearance rates on top (x4) made it worse (36.8 dB novel, 37.7 dB preservation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch
from torch import Tensor

from rl3dedit.progress import Progress
from rl3dedit.recon.config import ReconConfig
from rl3dedit.recon.densify import make_densifier
from rl3dedit.recon.fit import FitResult, background_tensor, final_metrics
from rl3dedit.recon.init import scene_extent
from rl3dedit.recon.loop import Anchor, LoopSettings, Views, optimise
from rl3dedit.recon.optim import GEOMETRY_PARAMS, learning_rates, make_splats
from rl3dedit.render import rasterize, render_images
from rl3dedit.render.config import RENDER_CHUNK_SIZE, RenderConfig
from rl3dedit.scene import SH_C0, Cameras, Capture, GaussianScene

logger = logging.getLogger(__name__)


def _check_edited_views(cameras: Cameras, edited_views: Tensor) -> None:
    expected = (len(cameras), 3, cameras.height, cameras.width)
    if tuple(edited_views.shape) != expected:
        raise ValueError(f"refit: edited_views has shape {tuple(edited_views.shape)}, expected {expected} "
                         "(one (3, H, W) image per camera at the cameras' size)")
    if not torch.isfinite(edited_views).all():
        raise ValueError("refit: edited_views contain NaN or inf")
    low, high = float(edited_views.min()), float(edited_views.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"refit: edited_views must be in [0, 1], found values in [{low:.3f}, {high:.3f}]")


APPEARANCE_PARAMS = ("sh0", "shN", "opacities")
MIN_CONTRIBUTION = 1e-3
"""Summed render weight below which a Gaussian's closed-form colour update is skipped (it covers almost nothing)."""


def contribution_sums(
    scene: GaussianScene, cameras: Cameras, values: Tensor, *, chunk_size: int = RENDER_CHUNK_SIZE,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Per-Gaussian sums of pixel values weighted by the Gaussian's render weight, over all views.

    With w_ip = alpha_i T_i, Gaussian i's share of pixel p in front-to-back compositing (Kerbl et al. 2023, Eq. 3),
    returns sum_p w_ip values_p and sum_p w_ip. A render is linear in per-Gaussian features, so both are the
    gradient of sum_p <values_p, render_p> with respect to a feature vector of zeros (one backward pass).

    Args:
        scene: the Gaussians (not differentiated).
        cameras: V cameras (OpenCV world-to-camera) at the values' size.
        values: (V, C, H, W) per-pixel values (e.g. residual colours or a 0/1 mask).
        chunk_size, backend: views per rasterizer call and the rasterizer (`RenderConfig`).
    Returns:
        ((N, C) weighted value sums, (N,) weight sums), float32 on the scene's device.
    """
    if values.ndim != 4 or values.shape[0] != len(cameras) or tuple(values.shape[2:]) != (cameras.height, cameras.width):
        raise ValueError(f"contribution_sums: values have shape {tuple(values.shape)}, expected "
                         f"({len(cameras)}, C, {cameras.height}, {cameras.width})")
    device = scene.means.device
    channels = values.shape[1]
    features = torch.zeros(scene.num_gaussians, channels + 1, device=device, requires_grad=True)
    params = [p.detach() for p in (scene.means, scene.quats, scene.scales, scene.opacities)]
    for start in range(0, len(cameras), chunk_size):
        picks = list(range(start, min(start + chunk_size, len(cameras))))
        chunk = cameras[picks]
        colors, _, _ = rasterize(*params, features, chunk.viewmats.to(device), chunk.Ks.to(device), chunk.width,
                                 chunk.height, backend=backend)  # (v, H, W, C + 1)
        weights = values[picks].to(device, torch.float32).permute(0, 2, 3, 1)
        weights = torch.cat([weights, torch.ones_like(weights[..., :1])], dim=-1)
        (colors * weights).sum().backward()
    grad = features.grad
    return grad[:, :channels], grad[:, channels]


@torch.no_grad()
def closed_form_colors(
    scene: GaussianScene, views: Views, background: Tensor, iters: int, render_config: RenderConfig | None = None
) -> GaussianScene:
    """`scene` with its DC colours moved toward the target views without a gradient step.

    Each pass renders every view, takes the residual r = target - render and moves each Gaussian's colour by
    sum_p w_ip r_p / sum_p w_ip. This is a Jacobi step on the least-squares colour problem preconditioned by the
    summed weights; because each pixel's weights sum to at most 1 the step never overshoots a pixel, and where the
    targets equal the render (untouched regions) nothing moves.
    """
    rc = render_config or RenderConfig()
    sh_dc = scene.sh_dc.clone()
    for _ in range(iters):
        current = scene.with_params(sh_dc=sh_dc)
        rendered = render_images(current, views.cameras, background, backend=rc.backend, chunk_size=rc.chunk_size)
        residual = views.images - rendered.to(views.images.device)  # host; contribution_sums moves each chunk
        with torch.enable_grad():
            sums, weights = contribution_sums(current, views.cameras, residual, chunk_size=rc.chunk_size,
                                              backend=rc.backend)
        seen = weights > MIN_CONTRIBUTION
        sh_dc[seen] += sums[seen] / weights[seen, None] / SH_C0
    return scene.with_params(sh_dc=sh_dc)


def refit(
    scene: GaussianScene,
    cameras: Cameras,
    edited_views: Tensor,  # (V, 3, H, W) in [0, 1]
    config: ReconConfig,
    *,
    iters: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    holdout: Capture | None = None,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    progress: Progress | None = None,
    snapshots: Sequence[int] = (),
    render: RenderConfig | None = None,
) -> FitResult:
    """Fit `scene` (warm start) to the edited views seen from `cameras`.

    Args:
        scene: the source Gaussians (not modified).
        cameras: the V cameras the edited views were rendered from (OpenCV world-to-camera).
        edited_views: (V, 3, H, W) in [0, 1], H/W = cameras.height/width.
        config: `refit_iters`, `refit_geometry_lr_scale`, `refit_anchor_weight`, `refit_densify` and the base rates.
        iters: overrides `config.refit_iters`.
        holdout: optional views not fitted (e.g. other source-capture frames) to score afterwards.
        background, seed, device, progress, snapshots, render: as in `fit` (progress is called "refit").
    Returns:
        FitResult: metrics "train_psnr"/"train_ssim" on the edited views, "holdout_*" when `holdout` is given,
        wall time, "init_time_s" (the closed-form colour passes); history of (iteration, seconds, loss, held-out PSNR).
    """
    started = time.perf_counter()
    _check_edited_views(cameras, edited_views)
    device = torch.device(device)
    steps = config.refit_iters if iters is None else iters
    if steps < 1:
        raise ValueError(f"refit: iters must be >= 1, got {steps}")
    generator = torch.Generator().manual_seed(seed)
    train = Views(cameras.to(device), edited_views.to("cpu", torch.float32))  # images stay on the host (`Views`)
    held = Views(holdout.cameras.to(device), holdout.images.to("cpu", torch.float32)) if holdout else None
    extent = scene_extent(cameras)

    per_step = config.views_per_step if config.refit_views_per_step is None else config.refit_views_per_step
    config = config.model_copy(update={"views_per_step": min(per_step or len(cameras), len(cameras))})
    rates = learning_rates(config, extent, geometry_scale=config.refit_geometry_lr_scale)
    rates = {name: rate * (config.refit_appearance_lr_scale if name in APPEARANCE_PARAMS else 1.0)
             for name, rate in rates.items()}
    bg = background_tensor(background, device)
    start = scene.to(device, torch.float32)
    init_started = time.perf_counter()
    if config.refit_color_init_iters:
        start = closed_form_colors(start, train, bg, config.refit_color_init_iters, render)
    init_seconds = time.perf_counter() - init_started
    splats = make_splats(start, rates, device)
    anchor = Anchor({name: splats.params[name].detach().clone() for name in GEOMETRY_PARAMS},
                    config.refit_anchor_weight, extent)
    settings = LoopSettings(iters=steps, rates=rates, background=bg, seed=seed, max_sh_degree=scene.sh_degree,
                            sh_ramp=False, anchor=anchor, holdout=held, snapshot_at=frozenset(snapshots),
                            name="refit", render=render or RenderConfig())
    # A refit starts from a converged scene: the refine-start delay of a base fit does not apply.
    refit_config = config.model_copy(update={"refine_start_iter": 0})
    densifier = make_densifier(config.refit_densify, refit_config, extent, device, generator)
    logger.info("refitting %d Gaussians to %d edited views for %d steps", scene.num_gaussians, len(cameras), steps)
    train_seconds = optimise(splats, train, refit_config, settings, densifier, progress)

    result_scene = splats.detached_scene()
    metrics = final_metrics(result_scene.to(device), train, held, bg, settings.render)
    metrics.update(
        wall_time_s=time.perf_counter() - started, train_time_s=train_seconds, init_time_s=init_seconds, iters=steps,
        num_gaussians=result_scene.num_gaussians, num_train_views=len(cameras),
        num_holdout_views=len(held) if held else 0,
    )
    return FitResult(scene=result_scene, metrics=metrics, history=settings.history, snapshots=settings.snapshots)

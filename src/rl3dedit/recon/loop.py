"""The photometric optimisation loop shared by `fit` and `refit`, and held-out evaluation.

Each step renders `views_per_step` training views (cycling through a seeded permutation), takes the 3DGS loss
(1 - lambda) L1 + lambda (1 - SSIM) (plus an optional anchor toward source parameters), backpropagates, lets the
densifier record screen-space gradients and edit the Gaussians, and steps Adam. The means learning rate decays
exponentially (gsplat simple_trainer); SH bands switch on one per `sh_degree_interval` steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from rl3dedit.progress import Progress
from rl3dedit.recon.config import ReconConfig
from rl3dedit.recon.densify import Densifier
from rl3dedit.recon.metrics import photometric_loss, psnr, ssim
from rl3dedit.recon.optim import Splats, means_lr, set_lr
from rl3dedit.render import render, render_images
from rl3dedit.render.config import RenderConfig
from rl3dedit.scene import Cameras, GaussianScene

logger = logging.getLogger(__name__)



class FitStep(NamedTuple):
    """One history entry: iteration (1-based), training seconds so far (evaluation excluded), the step's loss and
    the held-out PSNR in dB (NaN when there is no held-out view)."""

    iteration: int
    seconds: float
    loss: float
    holdout_psnr: float


@dataclass
class Views:
    """Posed target images: cameras (V) on the training device and images (V, 3, H, W) float32 in [0, 1] on the
    host. A large capture's images need tens of GiB as float32, so only each step's batch and each scoring's
    targets are copied to the device (a few views: milliseconds against a step)."""

    cameras: Cameras
    images: Tensor

    def __len__(self) -> int:
        return len(self.cameras)


@dataclass
class Anchor:
    """Regulariser weight * sum_p mean((p - p_source)^2) over the raw parameters in `source` (a refit passes the
    geometry: means divided by the scene extent, log-scales, quats).

    Applies while the Gaussian count equals the source's (it is skipped after a densification changes it).
    """

    source: dict[str, Tensor]
    weight: float
    extent: float

    def loss(self, splats: Splats) -> Tensor | None:
        if self.weight == 0.0 or splats.num_gaussians != self.source["means"].shape[0]:
            return None
        total = splats.params["means"].new_zeros(())
        for name, reference in self.source.items():
            diff = splats.params[name] - reference
            if name == "means":
                diff = diff / self.extent
            total = total + diff.pow(2).mean() if diff.numel() else total
        return self.weight * total


@dataclass
class LoopSettings:
    """What the loop needs beyond the config: iteration count, initial rates, background, seed."""

    iters: int
    rates: dict[str, float]
    background: Tensor  # (3,)
    seed: int
    max_sh_degree: int
    sh_ramp: bool = True
    anchor: Anchor | None = None
    holdout: Views | None = None
    history: list[FitStep] = field(default_factory=list)
    snapshot_at: frozenset[int] = frozenset()
    """Iterations (1-based) after which a detached copy of the scene is kept in `snapshots`."""
    snapshots: dict[int, GaussianScene] = field(default_factory=dict)
    name: str = "fit"
    """What `progress` calls the loop ("fit" or "refit")."""
    render: RenderConfig = field(default_factory=RenderConfig)
    """Backend and chunk size of every render (the background is `background`)."""


@dataclass
class ImageScores:
    """Mean PSNR (dB) and SSIM over a set of views."""

    psnr: float
    ssim: float


def score_views(scene: GaussianScene, views: Views, background: Tensor,
                 render_config: RenderConfig | None = None) -> ImageScores:
    """PSNR and SSIM of the scene's renders against `views.images` (SSIM needs views of at least 11 px)."""
    rc = render_config or RenderConfig()
    pred = render_images(scene, views.cameras, background, backend=rc.backend, chunk_size=rc.chunk_size)
    targets = views.images.to(pred.device)
    return ImageScores(psnr=float(psnr(pred, targets)), ssim=float(ssim(pred, targets)))


def optimise(
    splats: Splats,
    train: Views,
    config: ReconConfig,
    settings: LoopSettings,
    densifier: Densifier,
    progress: Progress | None = None,
) -> float:
    """Run `settings.iters` steps in place on `splats`; appends to `settings.history`; returns training seconds.

    `progress(settings.name, step, iters, metrics)` after every step; metrics hold "loss", "num_gaussians" and,
    after an evaluation, "holdout_psnr".
    """
    generator = torch.Generator().manual_seed(settings.seed)
    if settings.holdout is not None and len(settings.holdout):
        start_psnr = score_views(splats.scene().detach(), settings.holdout, settings.background,
                                 settings.render).psnr
        settings.history.append(FitStep(0, 0.0, float("nan"), start_psnr))
    order: list[int] = []
    train_seconds = 0.0
    for step in range(settings.iters):
        started = time.perf_counter()
        if len(order) < config.views_per_step:
            order += torch.randperm(len(train), generator=generator).tolist()
        batch, order = order[: config.views_per_step], order[config.views_per_step :]
        set_lr(splats, "means", means_lr(settings.rates["means"], config.lr_means_final_ratio, step, settings.iters))
        sh_degree = settings.max_sh_degree
        if settings.sh_ramp:
            sh_degree = min(sh_degree, step // config.sh_degree_interval)
        scene = splats.scene()
        out = render(scene, train.cameras[batch], mode="RGB", background=settings.background,
                     backend=settings.render.backend, sh_degree=sh_degree)
        loss = photometric_loss(out.rgb, train.images[batch].to(out.rgb.device), config.ssim_weight)
        anchor = settings.anchor.loss(splats) if settings.anchor is not None else None
        total = loss + anchor if anchor is not None else loss
        densifier.pre_backward(splats, step, out)
        total.backward()
        splats.step()
        splats.zero_grad()
        # After the Adam step, as gsplat's simple_trainer: a refinement replaces parameters (dropping their grads).
        densifier.post_backward(splats, step, out)
        train_seconds += time.perf_counter() - started

        loss_value = loss.item()
        info = {"loss": loss_value, "num_gaussians": float(splats.num_gaussians)}
        last = step + 1 == settings.iters
        if (step + 1) % config.eval_every == 0 or last:
            holdout_psnr = float("nan")
            if settings.holdout is not None and len(settings.holdout):
                holdout_psnr = score_views(splats.scene().detach(), settings.holdout, settings.background,
                                           settings.render).psnr
                info["holdout_psnr"] = holdout_psnr
            settings.history.append(FitStep(step + 1, train_seconds, loss_value, holdout_psnr))
            held = "" if holdout_psnr != holdout_psnr else f", held-out PSNR {holdout_psnr:.2f} dB"  # NaN: none
            logger.info("step %d/%d: loss %.4f%s, %d Gaussians, %.1f s", step + 1, settings.iters, loss_value, held,
                        splats.num_gaussians, train_seconds)
        if step + 1 in settings.snapshot_at:
            settings.snapshots[step + 1] = splats.detached_scene()
        if progress is not None:
            progress(settings.name, step + 1, settings.iters, info)
    return train_seconds


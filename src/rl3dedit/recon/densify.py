"""Adaptive density control: grow (clone / split), prune and opacity reset (Kerbl et al. 2023, Sec. 5.2).

Laid out as gsplat's strategies: settings (`DensifySettings`, frozen) apart from the running state (a dict with
gsplat's keys: "grad2d", "count", "scene_scale"), behind one small interface (`pre_backward`, `post_backward`,
taking the step's `RenderOutput`), chosen by `make_densifier`:
- `CpuDensifier`: our own, on any device. Every `refine_every` steps inside the refine window: Gaussians whose
  mean screen-space gradient (in NDC units, gsplat's normalisation: pixel gradient x W/2, H/2) exceeds
  `grow_grad2d` are cloned when small (max scale <= grow_scale3d x extent) or split in two (children sampled
  from the parent Gaussian, scales / 1.6) when large; then Gaussians with opacity < prune_opacity (and, after the
  first opacity reset, larger than prune_scale3d x extent) are removed. Opacities are reset to
  2 x prune_opacity every `reset_every` steps. Growth stops at `max_gaussians`.
- `GsplatDensifier`: gsplat's `DefaultStrategy` with the same settings (lazy import), plus the opacity reset that
  gsplat 1.5.3 skips (see `GsplatDensifier`).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from rl3dedit.recon.config import ReconConfig
from rl3dedit.recon.optim import Splats, append_rows, edit_topology, select_rows
from rl3dedit.render import RenderOutput
from rl3dedit.scene.pose import quaternion_to_matrix

logger = logging.getLogger(__name__)


class Densifier(Protocol):
    def pre_backward(self, splats: Splats, step: int, out: RenderOutput) -> None: ...

    def post_backward(self, splats: Splats, step: int, out: RenderOutput) -> None: ...


@dataclass(frozen=True)
class DensifySettings:
    """The thresholds and schedule of both densifiers (gsplat `DefaultStrategy` names in comments)."""

    prune_opacity: float  # prune_opa
    grow_grad2d: float
    grow_scale3d: float
    prune_scale3d: float
    refine_start_iter: int
    refine_stop_iter: int
    refine_every: int
    reset_every: int
    max_gaussians: int  # ours only: gsplat has no cap

    @classmethod
    def from_config(cls, config: ReconConfig) -> DensifySettings:
        return cls(prune_opacity=config.prune_opacity, grow_grad2d=config.grow_grad2d,
                   grow_scale3d=config.grow_scale3d, prune_scale3d=config.prune_scale3d,
                   refine_start_iter=config.refine_start_iter, refine_stop_iter=config.refine_stop_iter,
                   refine_every=config.refine_every, reset_every=config.reset_every,
                   max_gaussians=config.max_gaussians)

    def resets_at(self, step: int) -> bool:
        """Opacity reset after this step (inside the refine window, as gsplat intends)."""
        return 0 < step < self.refine_stop_iter and step % self.reset_every == 0


def initial_state(extent: float) -> dict[str, Any]:
    """A fresh running state: "grad2d" and "count" (N,) statistics, created on first use; "scene_scale"."""
    return {"grad2d": None, "count": None, "scene_scale": extent}


@dataclass
class RefineCounts:
    """Gaussians changed by one refinement."""

    cloned: int = 0
    split: int = 0
    pruned: int = 0


@dataclass
class CpuDensifier:
    """Our densification (see the module docstring).

    Fields:
        settings: thresholds and schedule.
        state: running state (`initial_state`); "grad2d" and "count" are (N,) sums since the last refinement.
        generator: draws the split children.
        history: (step, counts) of every refinement, for logs and tests.
    """

    settings: DensifySettings
    state: dict[str, Any]
    generator: torch.Generator
    history: list[tuple[int, RefineCounts]] = field(default_factory=list)

    def pre_backward(self, splats: Splats, step: int, out: RenderOutput) -> None:
        if step < self.settings.refine_stop_iter:
            out.means2d.retain_grad()

    @torch.no_grad()
    def post_backward(self, splats: Splats, step: int, out: RenderOutput) -> None:
        cfg = self.settings
        if step >= cfg.refine_stop_iter:
            return
        self._accumulate(splats, out)
        if step > cfg.refine_start_iter and step % cfg.refine_every == 0:
            counts = self._refine(splats, step)
            self.history.append((step, counts))
            logger.debug("step %d: cloned %d, split %d, pruned %d -> %d Gaussians", step, counts.cloned,
                         counts.split, counts.pruned, splats.num_gaussians)
            self.state["grad2d"] = self.state["count"] = None
        if cfg.resets_at(step):
            reset_opacities(splats, 2.0 * cfg.prune_opacity)

    def _accumulate(self, splats: Splats, out: RenderOutput) -> None:
        means2d = out.means2d  # (V, N, 2) pixels
        if means2d.grad is None:
            return
        n = splats.num_gaussians
        if self.state["grad2d"] is None or self.state["grad2d"].shape[0] != n:
            self.state["grad2d"] = torch.zeros(n, device=means2d.device)
            self.state["count"] = torch.zeros(n, device=means2d.device)
        scale = torch.tensor([out.width / 2.0, out.height / 2.0], device=means2d.device)
        grads = (means2d.grad * scale * means2d.shape[0]).norm(dim=-1)  # (V, N) NDC units, as gsplat
        visible = out.radii > 0  # (V, N)
        self.state["grad2d"] += (grads * visible).sum(0)
        self.state["count"] += visible.sum(0)

    def _refine(self, splats: Splats, step: int) -> RefineCounts:
        cfg, extent = self.settings, self.state["scene_scale"]
        counts = RefineCounts()
        if self.state["grad2d"] is not None and splats.num_gaussians < cfg.max_gaussians:
            mean_grad = self.state["grad2d"] / self.state["count"].clamp_min(1)
            grow = mean_grad > cfg.grow_grad2d
            budget = cfg.max_gaussians - splats.num_gaussians
            if int(grow.sum()) > budget:
                threshold = mean_grad.topk(budget).values[-1] if budget > 0 else math.inf
                grow &= mean_grad >= threshold
            small = splats.params["scales"].exp().max(dim=1).values <= cfg.grow_scale3d * extent
            counts.cloned = self._clone(splats, grow & small)
            counts.split = self._split(splats, torch.cat([grow & ~small, grow.new_zeros(counts.cloned)]))
        opacity = torch.sigmoid(splats.params["opacities"])
        prune = opacity < cfg.prune_opacity
        if step > cfg.reset_every:
            prune |= splats.params["scales"].exp().max(dim=1).values > cfg.prune_scale3d * extent
        if prune.all():
            logger.warning("step %d: every Gaussian is below the prune thresholds; keeping them", step)
            return counts
        counts.pruned = int(prune.sum())
        if counts.pruned:
            select_rows(splats, ~prune)
        return counts

    @staticmethod
    def _clone(splats: Splats, mask: Tensor) -> int:
        count = int(mask.sum())
        if count:
            append_rows(splats, {name: p.data[mask] for name, p in splats.params.items()})
        return count

    def _split(self, splats: Splats, mask: Tensor) -> int:
        """Replace each selected Gaussian by two children drawn from it, with scales divided by 1.6 (3DGS)."""
        count = int(mask.sum())
        if not count:
            return 0
        p = {name: param.data[mask] for name, param in splats.params.items()}
        scales = p["scales"].exp()
        noise = torch.randn(2, count, 3, generator=self.generator).to(scales)
        offsets = torch.einsum("nij,knj->kni", quaternion_to_matrix(p["quats"]), noise * scales)  # (2, M, 3)
        children = {name: value.repeat(2, *[1] * (value.ndim - 1)) for name, value in p.items()}
        children["means"] = (p["means"][None] + offsets).reshape(-1, 3)
        children["scales"] = torch.log(scales / 1.6).repeat(2, 1)
        select_rows(splats, ~mask)
        append_rows(splats, children)
        return count


@torch.no_grad()
def reset_opacities(splats: Splats, value: float) -> None:
    """Clamp every opacity to at most `value` (3DGS opacity reset); Adam moments of opacities are zeroed."""
    ceiling = math.log(value / (1.0 - value))

    def clamp(name: str, p: Tensor) -> Tensor:
        return p.clamp_max(ceiling) if name == "opacities" else p

    opacity_optimizer = splats.optimizers["opacities"]
    edit_topology(splats, clamp, lambda m: m)
    for state in opacity_optimizer.state.values():
        state["exp_avg"].zero_()
        state["exp_avg_sq"].zero_()


@dataclass
class GsplatDensifier:
    """gsplat's `DefaultStrategy` with our settings; gsplat is imported on construction.

    gsplat 1.5.3 never resets opacities: its test `step % reset_every == 0 & step > 0` parses as
    `step % reset_every == (0 & step) > 0`, always false (https://github.com/nerfstudio-project/gsplat/issues/797),
    so Gaussian counts and memory grow unchecked. `post_backward` therefore resets through gsplat's own
    `reset_opa` at our schedule; a gsplat that resets too clamps to the same value twice, which changes nothing.
    """

    settings: DensifySettings
    state: dict[str, Any]
    strategy: Any = None

    def __post_init__(self) -> None:
        from gsplat.strategy import DefaultStrategy

        cfg = self.settings
        self.strategy = DefaultStrategy(
            prune_opa=cfg.prune_opacity, grow_grad2d=cfg.grow_grad2d, grow_scale3d=cfg.grow_scale3d,
            prune_scale3d=cfg.prune_scale3d, refine_start_iter=cfg.refine_start_iter,
            refine_stop_iter=cfg.refine_stop_iter, reset_every=cfg.reset_every, refine_every=cfg.refine_every,
        )
        self.state = {**self.strategy.initialize_state(scene_scale=self.state["scene_scale"]), **self.state}

    @staticmethod
    def _info(out: RenderOutput) -> dict[str, Any]:
        """gsplat's unpacked `meta`: per-axis radii (V, N, 2) (our contract keeps their max, which is all the
        strategy's visibility test needs), image size, camera count; no gaussian_ids when unpacked."""
        radii = out.radii[..., None].expand(*out.radii.shape, 2)
        return {"means2d": out.means2d, "radii": radii, "width": out.width, "height": out.height,
                "n_cameras": out.means2d.shape[0], "gaussian_ids": None}

    def pre_backward(self, splats: Splats, step: int, out: RenderOutput) -> None:
        self.strategy.step_pre_backward(splats.params, splats.optimizers, self.state, step, self._info(out))

    def post_backward(self, splats: Splats, step: int, out: RenderOutput) -> None:
        self.strategy.step_post_backward(
            splats.params, splats.optimizers, self.state, step, self._info(out), packed=False
        )
        if self.settings.resets_at(step):
            from gsplat.strategy.ops import reset_opa

            reset_opa(splats.params, splats.optimizers, self.state, value=2.0 * self.settings.prune_opacity)


@dataclass
class NoDensifier:
    """Fixed topology."""

    def pre_backward(self, splats: Splats, step: int, out: RenderOutput) -> None:
        return None

    def post_backward(self, splats: Splats, step: int, out: RenderOutput) -> None:
        return None


def make_densifier(
    enabled: bool, config: ReconConfig, extent: float, device: torch.device, generator: torch.Generator
) -> Densifier:
    """gsplat's DefaultStrategy on CUDA when gsplat is installed, `CpuDensifier` otherwise, or none."""
    if not enabled:
        return NoDensifier()
    settings, state = DensifySettings.from_config(config), initial_state(extent)
    if device.type == "cuda":
        if importlib.util.find_spec("gsplat") is not None:
            return GsplatDensifier(settings, state)
        logger.warning("gsplat is not installed: densifying with the slower CPU strategy (pip install 'rl3dedit[cuda]')")
    return CpuDensifier(settings, state, generator)

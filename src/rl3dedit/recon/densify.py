"""Adaptive density control: grow (clone / split), prune and opacity reset (Kerbl et al. 2023, Sec. 5.2).

Two implementations behind one small interface (`pre_backward`, `post_backward`), chosen by `make_densifier`:
- `CpuDensifier`: our own, on any device. Every `refine_every` steps inside the refine window: Gaussians whose
  mean screen-space gradient (in NDC units, gsplat's normalisation: pixel gradient x W/2, H/2) exceeds
  `grow_grad2d` are cloned when small (max scale <= grow_scale3d x extent) or split in two (children sampled
  from the parent Gaussian, scales / 1.6) when large; then Gaussians with opacity < prune_opacity (and, after the
  first opacity reset, larger than prune_scale3d x extent) are removed. Opacities are reset to
  2 x prune_opacity every `reset_every` steps. Growth stops at `max_gaussians`.
- `GsplatDensifier`: gsplat's `DefaultStrategy` with the same thresholds (CUDA; lazy import).
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
from rl3dedit.scene import quaternion_to_matrix

logger = logging.getLogger(__name__)


class Densifier(Protocol):
    def pre_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None: ...

    def post_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None: ...


@dataclass
class RefineCounts:
    """Gaussians changed by one refinement."""

    cloned: int = 0
    split: int = 0
    pruned: int = 0


@dataclass
class CpuDensifier:
    """Our densification (see the module docstring); `grad2d` and `count` are the running statistics (N,)."""

    config: ReconConfig
    extent: float
    generator: torch.Generator
    grad2d: Tensor | None = None
    count: Tensor | None = None
    history: list[tuple[int, RefineCounts]] = field(default_factory=list)

    def pre_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None:
        if self._active(step):
            meta["means2d"].retain_grad()

    def _active(self, step: int) -> bool:
        return step < self.config.refine_stop_iter

    @torch.no_grad()
    def post_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None:
        cfg = self.config
        if not self._active(step):
            return
        self._accumulate(splats, meta)
        if step > cfg.refine_start_iter and step % cfg.refine_every == 0:
            counts = self._refine(splats, step)
            self.history.append((step, counts))
            logger.debug("step %d: cloned %d, split %d, pruned %d -> %d Gaussians", step, counts.cloned,
                         counts.split, counts.pruned, splats.num_gaussians)
            self.grad2d = self.count = None
        if step > 0 and step % cfg.reset_every == 0:
            reset_opacities(splats, 2.0 * cfg.prune_opacity)

    def _accumulate(self, splats: Splats, meta: dict[str, Any]) -> None:
        means2d = meta["means2d"]  # (V, N, 2) pixels
        if means2d.grad is None:
            return
        n = splats.num_gaussians
        if self.grad2d is None or self.grad2d.shape[0] != n:
            self.grad2d = torch.zeros(n, device=means2d.device)
            self.count = torch.zeros(n, device=means2d.device)
        scale = torch.tensor([meta["width"] / 2.0, meta["height"] / 2.0], device=means2d.device)
        grads = (means2d.grad * scale * means2d.shape[0]).norm(dim=-1)  # (V, N) NDC units, as gsplat
        visible = meta["radii"] > 0  # (V, N)
        self.grad2d += (grads * visible).sum(0)
        self.count += visible.sum(0)

    def _refine(self, splats: Splats, step: int) -> RefineCounts:
        cfg = self.config
        counts = RefineCounts()
        if self.grad2d is not None and splats.num_gaussians < cfg.max_gaussians:
            mean_grad = self.grad2d / self.count.clamp_min(1)
            grow = mean_grad > cfg.grow_grad2d
            budget = cfg.max_gaussians - splats.num_gaussians
            if int(grow.sum()) > budget:
                threshold = mean_grad.topk(budget).values[-1] if budget > 0 else math.inf
                grow &= mean_grad >= threshold
            small = splats.params["scales"].exp().max(dim=1).values <= cfg.grow_scale3d * self.extent
            counts.cloned = self._clone(splats, grow & small)
            counts.split = self._split(splats, torch.cat([grow & ~small, grow.new_zeros(counts.cloned)]))
        opacity = torch.sigmoid(splats.params["opacities"])
        prune = opacity < cfg.prune_opacity
        if step > cfg.reset_every:
            prune |= splats.params["scales"].exp().max(dim=1).values > cfg.prune_scale3d * self.extent
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
    """gsplat's `DefaultStrategy` (CUDA) with our thresholds; gsplat is imported on construction."""

    config: ReconConfig
    extent: float
    strategy: Any = None
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from gsplat.strategy import DefaultStrategy

        cfg = self.config
        self.strategy = DefaultStrategy(
            prune_opa=cfg.prune_opacity, grow_grad2d=cfg.grow_grad2d, grow_scale3d=cfg.grow_scale3d,
            prune_scale3d=cfg.prune_scale3d, refine_start_iter=cfg.refine_start_iter,
            refine_stop_iter=cfg.refine_stop_iter, reset_every=cfg.reset_every, refine_every=cfg.refine_every,
        )
        self.state = self.strategy.initialize_state(scene_scale=self.extent)

    @staticmethod
    def _info(meta: dict[str, Any]) -> dict[str, Any]:
        info = dict(meta)
        info["n_cameras"] = meta["means2d"].shape[0]
        # Our render contract reduces gsplat >= 1.5's per-axis radii (V, N, 2) to (V, N); its strategy wants both.
        info["radii"] = meta["radii"][..., None].expand(*meta["radii"].shape, 2)
        return info

    def pre_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None:
        self.strategy.step_pre_backward(splats.params, splats.optimizers, self.state, step, self._info(meta))

    def post_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None:
        self.strategy.step_post_backward(
            splats.params, splats.optimizers, self.state, step, self._info(meta), packed=False
        )


@dataclass
class NoDensifier:
    """Fixed topology."""

    def pre_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None:
        return None

    def post_backward(self, splats: Splats, step: int, meta: dict[str, Any]) -> None:
        return None


def make_densifier(
    enabled: bool, config: ReconConfig, extent: float, device: torch.device, generator: torch.Generator
) -> Densifier:
    """gsplat's DefaultStrategy on CUDA when gsplat is installed, `CpuDensifier` otherwise, or none."""
    if not enabled:
        return NoDensifier()
    if device.type == "cuda":
        if importlib.util.find_spec("gsplat") is not None:
            return GsplatDensifier(config, extent)
        logger.warning("gsplat is not installed: densifying with the slower CPU strategy (pip install 'rl3dedit[cuda]')")
    return CpuDensifier(config, extent, generator)

"""Trainable Gaussians: one `nn.Parameter` and one Adam per parameter, with topology edits that keep Adam state.

Parameter names are gsplat's (`means`, `quats`, `scales`, `opacities`, `sh0`, `shN`) so gsplat's
`DefaultStrategy` can edit them on CUDA; the values keep `GaussianScene`'s raw conventions (wxyz quats,
log scales, opacity logits). Learning rates follow gsplat's simple_trainer (gsplat's examples/simple_trainer.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rl3dedit.recon.config import ReconConfig
from rl3dedit.scene import GaussianScene

SCENE_FIELDS = {
    "means": "means",
    "quats": "quats",
    "scales": "log_scales",
    "opacities": "opacity_logits",
    "sh0": "sh_dc",
    "shN": "sh_rest",
}
"""gsplat parameter name -> `GaussianScene` field."""
GEOMETRY_PARAMS = ("means", "scales", "quats")


@dataclass
class Splats:
    """The optimised Gaussians.

    Fields:
        params: gsplat name -> (N, ...) leaf parameter (see `SCENE_FIELDS`).
        optimizers: gsplat name -> Adam over that one parameter (gsplat's layout, which its strategies edit).
    """

    params: dict[str, torch.nn.Parameter]
    optimizers: dict[str, torch.optim.Adam]

    @property
    def num_gaussians(self) -> int:
        return self.params["means"].shape[0]

    def scene(self) -> GaussianScene:
        """A `GaussianScene` view of the parameters (differentiable; no copy). Not validated: it runs every
        optimisation step, and the optimiser's own tensors are checked where they leave it (`detached_scene`)."""
        return GaussianScene.unchecked(**{field: self.params[name] for name, field in SCENE_FIELDS.items()})

    def detached_scene(self) -> GaussianScene:
        """A detached copy on the CPU."""
        return GaussianScene(
            **{field: self.params[name].detach().cpu().clone() for name, field in SCENE_FIELDS.items()}
        )

    def zero_grad(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.step()


def learning_rates(config: ReconConfig, extent: float, geometry_scale: float = 1.0) -> dict[str, float]:
    """Initial Adam learning rates per parameter (gsplat simple_trainer), x sqrt(views_per_step).

    Args:
        extent: scene extent (world units); the means rate is `lr_means * extent`.
        geometry_scale: factor on the means, scales and quats rates (a refit uses < 1).
    """
    batch = math.sqrt(config.views_per_step)
    rates = {
        "means": config.lr_means * extent,
        "scales": config.lr_scales,
        "quats": config.lr_quats,
        "opacities": config.lr_opacities,
        "sh0": config.lr_sh0,
        "shN": config.lr_sh0 / 20.0,
    }
    return {
        name: rate * batch * (geometry_scale if name in GEOMETRY_PARAMS else 1.0) for name, rate in rates.items()
    }


def means_lr(initial: float, final_ratio: float, step: int, total: int) -> float:
    """Exponential decay from `initial` at step 0 to `initial * final_ratio` at step `total` (gsplat's schedule)."""
    return initial * final_ratio ** (min(step, total) / max(total, 1))


def make_splats(scene: GaussianScene, rates: dict[str, float], device: torch.device | str) -> Splats:
    """Copy `scene` into float32 leaf parameters on `device`, each with its own Adam (eps 1e-15, as gsplat)."""
    params = {
        name: torch.nn.Parameter(getattr(scene, field).detach().to(device, torch.float32).clone())
        for name, field in SCENE_FIELDS.items()
    }
    optimizers = {
        name: torch.optim.Adam([{"params": [param], "lr": rates[name], "name": name}], eps=1e-15)
        for name, param in params.items()
    }
    return Splats(params, optimizers)


def set_lr(splats: Splats, name: str, lr: float) -> None:
    for group in splats.optimizers[name].param_groups:
        group["lr"] = lr


@torch.no_grad()
def edit_topology(
    splats: Splats,
    param_fn: Callable[[str, Tensor], Tensor],
    state_fn: Callable[[Tensor], Tensor],
) -> None:
    """Replace every parameter by `param_fn(name, old)` and every Adam moment by `state_fn(old_moment)`.

    Used to prune, clone and split; both functions must map N rows to the same new N'. The Adam step count is
    kept, so bias correction does not restart for the surviving Gaussians.
    """
    for name, old in list(splats.params.items()):
        new = torch.nn.Parameter(param_fn(name, old.data))
        optimizer = splats.optimizers[name]
        state = optimizer.state.pop(old, None)
        optimizer.param_groups[0]["params"] = [new]
        if state is not None:
            optimizer.state[new] = {
                key: state_fn(value) if key in ("exp_avg", "exp_avg_sq") else value for key, value in state.items()
            }
        splats.params[name] = new


def select_rows(splats: Splats, keep: Tensor) -> None:
    """Keep the Gaussians selected by `keep` ((N,) bool mask or index tensor), with their Adam moments."""
    edit_topology(splats, lambda _name, p: p[keep], lambda m: m[keep])


def append_rows(splats: Splats, new_rows: dict[str, Tensor]) -> None:
    """Append Gaussians (gsplat name -> (M, ...) values); their Adam moments start at zero."""

    def add_param(name: str, p: Tensor) -> Tensor:
        return torch.cat([p, new_rows[name].to(p)])

    def add_moment(m: Tensor) -> Tensor:
        count = next(iter(new_rows.values())).shape[0]
        return torch.cat([m, m.new_zeros((count, *m.shape[1:]))])

    edit_topology(splats, add_param, add_moment)

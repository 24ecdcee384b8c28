"""Oracle edits: known 3D edits of a fitted scene, with ground truth for every camera of the capture.

The real editor cannot run here, but everything after it can be measured exactly: apply a known edit to a fitted
scene (the oracle), render it from the M selected views as a perfectly consistent 2D edit, refit the source scene
to those views and compare every other camera with the oracle's render. That isolates the 3D half of RL3DEdit
(paper Sec. 3.2: the edited views are lifted by a 3DGS refit).

Kinds (`make_oracle`):
- `recolour`: the Gaussians of a region take one colour (higher SH bands zeroed);
- `remove`: the Gaussians of a region are deleted;
- `add`: a small ball of opaque Gaussians is placed on top of a region;
- `global`: every Gaussian's colour goes through one affine colour transform.
A region is a `Box`, a `Sphere` or a per-Gaussian mask, e.g. a 2D mask lifted through the render weights
(`lift_mask`). Scores (`score_oracle`): novel-view PSNR/SSIM against the oracle on every camera not among the
edited views, PSNR on the edited views, and preservation: PSNR against the source render outside the edit's screen
mask (where no Gaussian the edit touched contributes), on the novel cameras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from rl3dedit.recon import contribution_sums, psnr, scene_extent, ssim
from rl3dedit.render import rasterize, render_images
from rl3dedit.render.config import RenderConfig
from rl3dedit.scene import SH_C0, Cameras, GaussianScene, rgb_to_sh_dc
from rl3dedit.views.paths import capture_frame

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

OracleKind = Literal["recolour", "remove", "add", "global"]
ORACLE_KINDS: tuple[str, ...] = ("recolour", "remove", "add", "global")
MASK_WEIGHT = 1.0 / 255.0
"""Summed render weight of touched Gaussians above which a pixel belongs to the edit's screen mask."""
WARM_TONE = ((0.9, 0.25, 0.0), (0.1, 0.75, 0.1), (0.0, 0.15, 0.6))
"""Default `global` transform (rows: output R, G, B from input R, G, B): a warm, desaturated grade."""


@dataclass(frozen=True)
class Box:
    """Axis-aligned box [low, high] in world units."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def contains(self, points: Tensor) -> Tensor:
        low, high = torch.tensor(self.low).to(points), torch.tensor(self.high).to(points)
        return ((points >= low) & (points <= high)).all(dim=-1)


@dataclass(frozen=True)
class Sphere:
    """Ball of `radius` world units around `centre`."""

    centre: tuple[float, float, float]
    radius: float

    def contains(self, points: Tensor) -> Tensor:
        return (points - torch.tensor(self.centre).to(points)).norm(dim=-1) <= self.radius


Region = Box | Sphere | Tensor
"""A box, a sphere, or an (N,) bool mask over the source Gaussians."""


@dataclass
class OracleEdit:
    """A known edit with its ground truth.

    Fields:
        kind: one of `ORACLE_KINDS`.
        source: the fitted scene.
        edited: the oracle scene (the ground truth of every view).
        touched_source: (N_source,) bool, source Gaussians the edit changes or deletes.
        touched_edited: (N_edited,) bool, edited-scene Gaussians that are new or changed.
    """

    kind: str
    source: GaussianScene
    edited: GaussianScene
    touched_source: Tensor
    touched_edited: Tensor


def region_mask(scene: GaussianScene, region: Region) -> Tensor:
    """(N,) bool: the Gaussians whose centres lie in `region` (or the mask itself, checked)."""
    if isinstance(region, Tensor):
        if region.dtype != torch.bool or tuple(region.shape) != (scene.num_gaussians,):
            raise ValueError(f"oracle region mask must be ({scene.num_gaussians},) bool, got {region.dtype} "
                             f"{tuple(region.shape)}")
        return region.to(scene.means.device)
    return region.contains(scene.means.detach())


def central_sphere(scene: GaussianScene, radius: float) -> Sphere:
    """A sphere of `radius` around the coordinate-wise median of the Gaussian centres (the captured object)."""
    centre = scene.means.detach().median(dim=0).values
    return Sphere(tuple(float(c) for c in centre), float(radius))


@torch.no_grad()
def lift_mask(scene: GaussianScene, cameras: Cameras, masks: Tensor, threshold: float = 0.5) -> Tensor:
    """(N,) bool: Gaussians that put more than `threshold` of their render weight inside 2D masks.

    Args:
        masks: (V, 1, H, W) or (V, H, W) in [0, 1] over the V cameras (OpenCV world-to-camera).
    Gaussians no view sees are not selected.
    """
    if masks.ndim == 3:
        masks = masks[:, None]
    with torch.enable_grad():
        inside, total = contribution_sums(scene, cameras, masks.float())
    return (total > 1e-6) & (inside[:, 0] > threshold * total)


def _checked_region(scene: GaussianScene, region: Region, kind: str) -> Tensor:
    mask = region_mask(scene, region)
    if not bool(mask.any()):
        raise ValueError(f"oracle {kind}: the region holds none of the scene's {scene.num_gaussians} Gaussians")
    return mask


def recolour(scene: GaussianScene, region: Region, color: tuple[float, float, float] = (0.2, 0.3, 0.9)) -> OracleEdit:
    """Every Gaussian in `region` takes `color` (RGB in [0, 1]) in all directions."""
    mask = _checked_region(scene, region, "recolour")
    sh_dc, sh_rest = scene.sh_dc.clone(), scene.sh_rest.clone()
    sh_dc[mask] = rgb_to_sh_dc(torch.tensor(color)).to(sh_dc)
    sh_rest[mask] = 0.0
    return OracleEdit("recolour", scene, scene.with_params(sh_dc=sh_dc, sh_rest=sh_rest), mask, mask.clone())


def remove(scene: GaussianScene, region: Region) -> OracleEdit:
    """The Gaussians in `region` are deleted."""
    mask = _checked_region(scene, region, "remove")
    edited = scene.subset(~mask)
    return OracleEdit("remove", scene, edited, mask, torch.zeros(edited.num_gaussians, dtype=torch.bool))


def add_object(
    scene: GaussianScene,
    region: Region,
    up: Tensor,
    *,
    radius: float,
    count: int = 200,
    color: tuple[float, float, float] = (0.9, 0.2, 0.1),
    seed: int = 0,
) -> OracleEdit:
    """Insert a ball of `count` small opaque Gaussians of `radius` resting on top of `region` along `up`.

    Args:
        up: (3,) world up direction (e.g. `views.capture_frame(cameras).up`).
        radius: the ball's radius in world units.
    """
    mask = _checked_region(scene, region, "add")
    means = scene.means.detach()
    up = torch.nn.functional.normalize(up.to(means).reshape(3), dim=0)
    inside = means[mask]
    top = float((inside @ up).quantile(0.98))
    centre = inside.mean(0) + (top - float(inside.mean(0) @ up) + radius) * up
    generator = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    depth = torch.rand(count, 1, generator=generator).pow(1 / 3)  # uniform in the ball
    blob_scale = radius * (4.0 / count) ** (1 / 3)
    new = GaussianScene(
        means=(centre + radius * directions.to(means) * depth.to(means)),
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).to(means).expand(count, 4).clone(),
        log_scales=torch.full((count, 3), math.log(blob_scale)).to(means),
        opacity_logits=torch.full((count,), 4.0).to(means),
        sh_dc=rgb_to_sh_dc(torch.tensor(color)).to(means).expand(count, 3).clone(),
        sh_rest=scene.sh_rest.new_zeros((count, *scene.sh_rest.shape[1:])),
    )
    edited = GaussianScene(**{name: torch.cat([value.detach(), getattr(new, name)])
                              for name, value in scene.parameters().items()})
    touched = torch.cat([torch.zeros(scene.num_gaussians, dtype=torch.bool), torch.ones(count, dtype=torch.bool)])
    return OracleEdit("add", scene, edited, torch.zeros(scene.num_gaussians, dtype=torch.bool), touched)


def global_colour(
    scene: GaussianScene,
    matrix: tuple[tuple[float, float, float], ...] = WARM_TONE,
    offset: tuple[float, float, float] = (0.05, 0.0, -0.05),
) -> OracleEdit:
    """Every Gaussian's colour c becomes A c + b. Rendered colour is 0.5 + SH(dir) (INRIA convention), so the DC
    term maps to (A (0.5 + C0 dc) + b - 0.5) / C0 and the higher bands, linear in colour, to A sh."""
    a = torch.tensor(matrix).to(scene.sh_dc)
    b = torch.tensor(offset).to(scene.sh_dc)
    dc = ((0.5 + SH_C0 * scene.sh_dc) @ a.T + b - 0.5) / SH_C0
    edited = scene.with_params(sh_dc=dc, sh_rest=scene.sh_rest @ a.T)
    everything = torch.ones(scene.num_gaussians, dtype=torch.bool)
    return OracleEdit("global", scene, edited, everything, everything.clone())


def make_oracle(kind: str, scene: GaussianScene, cameras: Cameras, *, region_fraction: float = 0.25,
                extent: float | None = None, seed: int = 0) -> OracleEdit:
    """The default oracle of `kind` for a fitted scene: its region is the central sphere of radius
    `region_fraction` x `extent` (default: `recon.scene_extent` of the cameras); `add` places a ball of a
    fifth of that radius on top of it, with the cameras' mean up direction."""
    if kind not in ORACLE_KINDS:
        raise ValueError(f"oracle kind must be one of {ORACLE_KINDS}, got {kind!r}")
    if extent is None:
        extent = scene_extent(cameras)
    region = central_sphere(scene, region_fraction * extent)
    if kind == "recolour":
        return recolour(scene, region)
    if kind == "remove":
        return remove(scene, region)
    if kind == "add":
        up = capture_frame(cameras).up.to(torch.float32)
        return add_object(scene, region, up, radius=0.2 * region.radius, seed=seed)
    return global_colour(scene)


def _weights(scene: GaussianScene, touched: Tensor, cameras: Cameras, render: RenderConfig) -> Tensor:
    """(V, 1, H, W) summed render weight of the `touched` Gaussians."""
    feature = touched.to(scene.means)[:, None]
    chunks = []
    for start in range(0, len(cameras), render.chunk_size):
        part = cameras[list(range(start, min(start + render.chunk_size, len(cameras))))]
        colors, _, _ = rasterize(scene.means, scene.quats, scene.scales, scene.opacities, feature,
                                 part.viewmats.to(scene.means), part.Ks.to(scene.means), part.width, part.height,
                                 backend=render.backend)
        chunks.append(colors.permute(0, 3, 1, 2))
    return torch.cat(chunks)


@torch.no_grad()
def edit_screen_mask(oracle: OracleEdit, cameras: Cameras, render: RenderConfig | None = None) -> Tensor:
    """(V, 1, H, W) bool: pixels where a Gaussian the edit touched contributes, in the source or the oracle
    render, grown by one pixel (the refit's changes bleed about a splat's footprint)."""
    render = render or RenderConfig()
    weight = torch.maximum(_weights(oracle.source, oracle.touched_source, cameras, render),
                           _weights(oracle.edited, oracle.touched_edited, cameras, render))
    mask = (weight > MASK_WEIGHT).float()
    return torch.nn.functional.max_pool2d(mask, kernel_size=3, stride=1, padding=1) > 0


def masked_psnr(pred: Tensor, target: Tensor, keep: Tensor) -> float:
    """PSNR in dB over the pixels where `keep` (V, 1, H, W) holds, pooled over views; NaN when none does."""
    keep = keep.expand_as(pred)
    if not bool(keep.any()):
        return float("nan")
    mse = (pred - target).pow(2)[keep].mean().clamp_min(1e-10)
    return float(-10.0 * torch.log10(mse))


@dataclass
class OracleRenders:
    """What the scores compare against, rendered once per oracle and camera split.

    Fields:
        novel_target, train_target: oracle renders of the novel / edited cameras (V, 3, H, W).
        novel_source: source renders of the novel cameras.
        novel_outside: (V, 1, H, W) bool, novel pixels outside the edit's screen mask.
    """

    novel_target: Tensor
    train_target: Tensor
    novel_source: Tensor
    novel_outside: Tensor


def _render(scene: GaussianScene, cameras: Cameras, render: RenderConfig) -> Tensor:
    return render_images(scene, cameras, render.background, backend=render.backend, chunk_size=render.chunk_size)


@torch.no_grad()
def oracle_renders(oracle: OracleEdit, cameras: Cameras, train_ids: list[int], render: RenderConfig) -> OracleRenders:
    """Ground truth for `score_oracle`: `cameras` are all cameras of the capture, `train_ids` the edited views,
    rendered with `render`'s background, backend and chunk size."""
    chosen = set(train_ids)
    novel_ids = [i for i in range(len(cameras)) if i not in chosen]
    if not novel_ids:
        raise ValueError("oracle: every camera is an edited view; no novel view is left to score")
    novel = cameras[novel_ids]
    return OracleRenders(
        novel_target=_render(oracle.edited, novel, render),
        train_target=_render(oracle.edited, cameras[list(train_ids)], render),
        novel_source=_render(oracle.source, novel, render),
        novel_outside=~edit_screen_mask(oracle, novel, render),
    )


@torch.no_grad()
def score_oracle(scene: GaussianScene, oracle: OracleEdit, cameras: Cameras, train_ids: list[int],
                 render: RenderConfig, truth: OracleRenders | None = None) -> dict[str, float]:
    """Scores of a refitted `scene` against the oracle.

    Returns:
        "novel_psnr", "novel_ssim" (cameras not in `train_ids`, vs the oracle), "train_psnr" (edited views vs the
        oracle), "preservation_psnr" (novel views vs the source render outside the edit's screen mask; NaN for a
        global edit, which has no outside), "num_gaussians", "num_novel_views".
    """
    truth = truth or oracle_renders(oracle, cameras, train_ids, render)
    chosen = set(train_ids)
    novel = cameras[[i for i in range(len(cameras)) if i not in chosen]]
    novel_pred = _render(scene, novel, render)
    train_pred = _render(scene, cameras[list(train_ids)], render)
    return {
        "novel_psnr": float(psnr(novel_pred, truth.novel_target)),
        "novel_ssim": float(ssim(novel_pred, truth.novel_target)),
        "train_psnr": float(psnr(train_pred, truth.train_target)),
        "preservation_psnr": (float("nan") if oracle.kind == "global"
                              else masked_psnr(novel_pred, truth.novel_source, truth.novel_outside)),
        "num_gaussians": float(scene.num_gaussians),
        "num_novel_views": float(len(novel)),
    }


@dataclass
class OracleCase:
    """An oracle edit refitted through the edit job's own view set and refit settings.

    Fields:
        oracle: the edit and its ground truth.
        edited_scene: the refitted scene.
        view_indices: the M edited views (indices into the scene's cameras), in grid order.
        metrics: `score_oracle` scores plus "refit_steps", "refit_seconds", "touched_gaussians".
    """

    oracle: OracleEdit
    edited_scene: GaussianScene
    view_indices: list[int]
    metrics: dict[str, float]


def run_oracle_case(kind: str, scene: GaussianScene, cameras: Cameras, config: RunConfig, *,
                    region_fraction: float = 0.25) -> OracleCase:
    """Make the oracle of `kind`, render the view set the edit job would edit (`pipeline.view_set`) from it, refit
    the source to those views with `config.recon`, and score every other camera of the scene at the view size."""
    from rl3dedit.pipeline.view_set import plan_view_set
    from rl3dedit.recon import refit

    background = tuple(config.render.background)
    planned = plan_view_set(cameras, config.views)
    sized = cameras.rescaled(planned.cameras.width, planned.cameras.height).to(scene.means.device)
    oracle = make_oracle(kind, scene, cameras, region_fraction=region_fraction)
    view_cameras = sized[planned.indices]
    targets = _render(oracle.edited, view_cameras, config.render)
    result = refit(scene, view_cameras, targets, config.recon, device=scene.means.device, seed=config.seed,
                   background=background, render=config.render)
    scores = score_oracle(result.scene.to(scene.means.device), oracle, sized, planned.indices, config.render)
    touched = oracle.touched_edited if kind == "add" else oracle.touched_source
    scores.update(refit_steps=float(result.metrics["iters"]), refit_seconds=float(result.metrics["wall_time_s"]),
                  touched_gaussians=float(touched.sum()))
    return OracleCase(oracle, result.scene, list(planned.indices), scores)

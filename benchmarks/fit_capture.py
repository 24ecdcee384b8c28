"""Held-out PSNR against wall time for a base 3DGS fit of a real capture (CPU by default).

Usage (`--scene` is a capture folder or its name under `--data-root`, default `$RL3DEDIT_DATA_ROOT`):
    python benchmarks/fit_capture.py --data-root data --scene stone_horse --downscale 8 --iters 800 --eval-every 50
    python benchmarks/fit_capture.py --scene data/face --downscale 4 --iters 300 --set lr_sh0=0.01

Prints one line per evaluation (iteration, training seconds, loss, held-out PSNR, Gaussians) and a summary; every
8th frame is held out. `--set name=value` overrides a `ReconConfig` field (repeatable). The defaults below adapt
gsplat's 30k-step schedule to a few hundred CPU steps: densification starts at step 100 and runs every 100 steps,
no opacity reset (it costs ~200 steps to recover, more than a CPU run has), and a CPU Gaussian budget.
`--refit-drift N` then measures refit stability: 9 training views (views.select_views) are re-rendered from the fitted
scene and the scene is refitted to these identical views for N steps, with geometry rates x0.1 plus the anchor,
with the default (full rates plus the anchor) and with plain settings (full rates, no anchor); the drift is the PSNR of held-out renders after the
refit against before it (higher = more stable), plus the mean movement of the means. `--refit-edit N` recolours the
Gaussians near the scene centre, refits the source to the 9 edited renders and reports how far the edit landed and
how much held-out pixels outside the edit drifted. `--load-ply` runs these on a saved fit instead of fitting.
Record results in benchmarks/RESULTS.md by hand, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch
from data_root import add_data_root_argument, data_root

from rl3dedit.recon import ReconConfig, fit, holdout_split, psnr, refit, scene_extent
from rl3dedit.render import render
from rl3dedit.scene import Capture, GaussianScene, load_capture, read_ply, rgb_to_sh_dc, write_ply
from rl3dedit.views import select_views

_REFIT_SETTINGS = {
    "slow geometry (geometry lr x0.1, anchor 1.0)": {"refit_geometry_lr_scale": 0.1, "refit_anchor_weight": 1.0},
    "default (full rates, anchor 1.0)": {"refit_geometry_lr_scale": 1.0, "refit_anchor_weight": 1.0},
    "plain (full rates, no anchor)": {"refit_geometry_lr_scale": 1.0, "refit_anchor_weight": 0.0},
}
CPU_DEFAULTS = {
    "refine_start_iter": 100,
    "refine_every": 100,
    "reset_every": 100_000,
    "max_gaussians": 30_000,
    "eval_every": 50,
}


def _parse_overrides(pairs: list[str]) -> dict[str, str]:
    """name=value strings; pydantic coerces the values to each field's type when the config is built."""
    overrides = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        overrides[name] = value
    return overrides


def _renders(scene: GaussianScene, cameras, background: tuple[float, float, float]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([render(scene, cameras[[i]], mode="RGB", background=background).rgb.clamp(0, 1)
                          for i in range(len(cameras))])


def refit_drift(scene: GaussianScene, capture: Capture, config: ReconConfig, iters: int,
                background: tuple[float, float, float]) -> None:
    """Refit to 9 identical re-rendered views; print held-out PSNR (after vs before) for two refit settings."""
    train_ids, holdout_ids = holdout_split(len(capture), 8)
    picks = [train_ids[i] for i in select_views(capture.cameras[train_ids], 9)]
    views, held = capture.cameras[picks], capture.cameras[holdout_ids]
    targets, held_before = _renders(scene, views, background), _renders(scene, held, background)
    print(f"# refit drift: {iters} steps on 9 identical views {picks}; {len(holdout_ids)} held-out views")
    print("setting\tseconds\tfitted_psnr\theld_out_psnr_vs_before\tmean_abs_d_means_world")
    for name, overrides in _REFIT_SETTINGS.items():
        result = refit(scene, views, targets, config.model_copy(update=overrides), iters=iters,
                       background=background)
        drift = float(psnr(_renders(result.scene, held, background), held_before))
        moved = float((result.scene.means - scene.means).norm(dim=1).mean())
        print(f"{name}\t{result.metrics['train_time_s']:.1f}\t{result.metrics['train_psnr']:.2f}\t{drift:.2f}\t{moved:.2e}",
              flush=True)


def refit_edit(scene: GaussianScene, capture: Capture, config: ReconConfig, iters: int,
               background: tuple[float, float, float]) -> None:
    """Recolour the Gaussians near the scene's centre (a consistent 3D edit), render the 9 edited views, refit the
    source to them; print the edited-region error and the held-out drift outside the edit for two refit settings."""
    train_ids, holdout_ids = holdout_split(len(capture), 8)
    picks = [train_ids[i] for i in select_views(capture.cameras[train_ids], 9)]
    views, held = capture.cameras[picks], capture.cameras[holdout_ids]
    centre = scene.means.median(dim=0).values
    radius = 0.25 * scene_extent(capture.cameras)
    inside = (scene.means - centre).norm(dim=1) < radius
    sh_dc = scene.sh_dc.clone()
    sh_dc[inside] = rgb_to_sh_dc(torch.tensor([0.2, 0.3, 0.9]))
    target = scene.with_params(sh_dc=sh_dc)
    edited, source_views = _renders(target, views, background), _renders(scene, views, background)
    held_target, held_source = _renders(target, held, background), _renders(scene, held, background)
    changed = ((edited - source_views).abs().amax(1, keepdim=True) > 0.05).expand_as(edited)
    held_same = ((held_target - held_source).abs().amax(1, keepdim=True) <= 0.05).expand_as(held_target)
    print(f"# refit edit: {int(inside.sum())} of {scene.num_gaussians} Gaussians recoloured; {iters} steps on 9 views; "
          f"{float(changed.float().mean()):.1%} of fitted pixels changed")
    print("setting\tseconds\tedit_err_before\tedit_err_after\theld_out_unchanged_mean_abs_drift\theld_out_psnr_vs_target")
    for name, overrides in _REFIT_SETTINGS.items():
        result = refit(scene, views, edited, config.model_copy(update=overrides), iters=iters, background=background)
        after, held_after = _renders(result.scene, views, background), _renders(result.scene, held, background)
        err_before = float((source_views - edited).abs()[changed].mean())
        err_after = float((after - edited).abs()[changed].mean())
        drift = float((held_after - held_source).abs()[held_same].mean())
        print(f"{name}\t{result.metrics['train_time_s']:.1f}\t{err_before:.4f}\t{err_after:.4f}\t{drift:.4f}\t"
              f"{float(psnr(held_after, held_target)):.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="stone_horse", help="a capture folder, or its name under --data-root")
    add_data_root_argument(parser)
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--iters", type=int, default=800)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", type=float, nargs=3, default=(1.0, 1.0, 1.0))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared, oversubscribed CPU)")
    parser.add_argument("--save-ply", type=Path, help="write the fitted scene here")
    parser.add_argument("--load-ply", type=Path, help="skip the fit: use this scene for --refit-drift")
    parser.add_argument("--refit-drift", type=int, default=0, help="refit steps for the drift measurement (0: skip)")
    parser.add_argument("--refit-edit", type=int, default=0, help="refit steps for the edit measurement (0: skip)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="ReconConfig field=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    path = Path(args.scene) if Path(args.scene).exists() else data_root(parser, args.data_root) / args.scene
    capture = load_capture(path, downscale=args.downscale)
    fields = dict(CPU_DEFAULTS, eval_every=args.eval_every, **_parse_overrides(args.overrides))
    config = ReconConfig(**fields)
    print(f"# {capture.name} downscale {args.downscale}: {len(capture)} frames at {capture.cameras.width}x"
          f"{capture.cameras.height}, {0 if capture.points is None else capture.points.shape[0]} SfM points")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; overrides {fields}")
    background = tuple(args.background)
    if args.load_ply is not None:
        loaded = read_ply(args.load_ply)
        if args.refit_drift:
            refit_drift(loaded, capture, config, args.refit_drift, background)
        if args.refit_edit:
            refit_edit(loaded, capture, config, args.refit_edit, background)
        return
    print("iter\ttrain_s\tloss\tholdout_psnr")

    def report(what: str, iteration: int, total: int, info: dict[str, float] | None = None) -> None:
        info = info or {}
        if "holdout_psnr" in info:
            print(f"{iteration}\t-\t{info['loss']:.4f}\t{info['holdout_psnr']:.2f}\t{int(info['num_gaussians'])} G",
                  flush=True)

    result = fit(capture, config, iters=args.iters, seed=args.seed, background=background, progress=report)
    for step in result.history:
        print(f"{step.iteration}\t{step.seconds:.1f}\t{step.loss:.4f}\t{step.holdout_psnr:.2f}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.metrics.items()}))
    if args.save_ply is not None:
        write_ply(result.scene, args.save_ply)
    if args.refit_drift:
        refit_drift(result.scene, capture, config, args.refit_drift, background)
    if args.refit_edit:
        refit_edit(result.scene, capture, config, args.refit_edit, background)


if __name__ == "__main__":
    main()

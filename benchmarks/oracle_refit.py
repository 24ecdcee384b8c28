"""The 3D half of an edit, measured against ground truth: oracle edits of a fitted real capture, refitted from M views.

Usage (`--scene` takes capture folders, or their names under `--data-root`, default `$RL3DEDIT_DATA_ROOT`):
    nice -n 10 python benchmarks/oracle_refit.py --scene stone_horse face --kinds recolour remove add global \
        --data-root data --views 4 9 18 27 36 --steps 100 300 1000 3000 --starts warm cold --out /tmp/oracle.jsonl
    python benchmarks/oracle_refit.py --table /tmp/oracle.jsonl      # the markdown table of a finished run

For each capture: fit once at low resolution (cached under /tmp/rl3dedit_oracle_cache), then for every oracle kind
(`rl3dedit.eval.oracle`), number of edited views M (`views.select_views` over all frames) and start:
- warm: refit the source scene to the M oracle renders (`recon.refit`), per `--method` setting;
- cold: fit from the capture's SfM points to the M oracle renders (`recon.fit`, densification on), the stand-in
  for the paper's feed-forward initialisation.
One run per (kind, M, start, method) goes to the largest step count; the smaller counts are snapshots of it (so
their means learning rate has not decayed as far as in a run of exactly that length). Scores per snapshot: novel-view
PSNR/SSIM against the oracle on every frame not edited, PSNR on the M edited views, preservation (PSNR against the
source render outside the edit's screen mask), Gaussians, seconds of optimisation. Every row is appended to `--out`
as one JSON line as soon as it exists, so a trimmed or interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

from rl3dedit.eval.oracle import ORACLE_KINDS, make_oracle, oracle_renders, score_oracle
from rl3dedit.recon import ReconConfig, fit, refit, scene_extent
from rl3dedit.render import render_images
from rl3dedit.render.config import RenderConfig
from rl3dedit.scene import Capture, load_capture, read_ply, write_ply
from rl3dedit.views import select_views

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_root import add_data_root_argument, data_root  # noqa: E402
from fit_capture import CPU_DEFAULTS  # noqa: E402  (the CPU fit schedule shared with benchmarks/fit_capture.py)

CACHE = Path("/tmp/rl3dedit_oracle_cache")
BACKGROUND = (1.0, 1.0, 1.0)
RENDER = RenderConfig(background=BACKGROUND)
METHODS = {
    "paper": {"refit_color_init_iters": 0},
    "fast": {"refit_color_init_iters": 3},
}
"""Refit settings compared (ReconConfig overrides on top of CPU_DEFAULTS): `paper` is the plain warm-started refit
(gsplat rates, one view per step); `fast` first moves the colours in closed form (3 passes). Other settings are
measured with --set, e.g. `--methods fast4 --set fast4:refit_color_init_iters=3 --set
fast4:refit_appearance_lr_scale=4`."""


def fitted_scene(name: str, capture: Capture, downscale: int, iters: int):
    """The capture's base fit, cached as a .ply under CACHE (fitted on every 8th-frame-held-out split)."""
    path = CACHE / f"{name}_ds{downscale}_it{iters}.ply"
    if path.exists():
        return read_ply(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    result = fit(capture, ReconConfig(**CPU_DEFAULTS), iters=iters, background=BACKGROUND)
    print(f"# fitted {name}: {result.metrics}", flush=True)
    write_ply(result.scene, path)
    return result.scene


def run_case(capture: Capture, scene, oracle, truth, picks: list[int], start: str, overrides: dict,
             steps: list[int]) -> list[dict]:
    """One refit (warm) or fit (cold) to the M oracle views, scored at every step count in `steps`."""
    cameras = capture.cameras[picks]
    targets = render_images(oracle.edited, cameras, BACKGROUND)
    config = ReconConfig(**{**CPU_DEFAULTS, **overrides})
    if start == "warm":
        result = refit(scene, cameras, targets, config, iters=max(steps), background=BACKGROUND, snapshots=steps)
    else:
        edited = Capture(cameras=cameras, images=targets, points=capture.points, point_colors=capture.point_colors,
                         name=f"{capture.name}-oracle")
        result = fit(edited, config, iters=max(steps), holdout_every=0, background=BACKGROUND, snapshots=steps)
    per_step = result.metrics["train_time_s"] / max(steps)
    setup = result.metrics.get("init_time_s", 0.0)
    rows = []
    for count in steps:
        scores = score_oracle(result.snapshots[count], oracle, capture.cameras, picks, RENDER, truth)
        rows.append({**scores, "steps": count, "seconds": setup + per_step * count, "s_per_step": per_step})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", nargs="+", default=["stone_horse", "face"])
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--fit-iters", type=int, default=800)
    parser.add_argument("--kinds", nargs="+", default=list(ORACLE_KINDS), choices=ORACLE_KINDS)
    parser.add_argument("--views", nargs="+", type=int, default=[4, 9, 18, 27, 36])
    parser.add_argument("--steps", nargs="+", type=int, default=[100, 300, 1000, 3000])
    parser.add_argument("--starts", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help=f"names from {list(METHODS)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="method:field=value, an extra ReconConfig override for one method (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/oracle_refit.jsonl"))
    parser.add_argument("--table", type=Path, help="print the markdown table of a finished --out file and exit")
    add_data_root_argument(parser)
    args = parser.parse_args()
    if args.table:
        print_table(args.table)
        return
    # Scene names (not existing paths) are capture folders under the data root; ask for it only then.
    root = data_root(parser, args.data_root) if any(not Path(name).exists() for name in args.scene) else None
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    methods = {name: dict(METHODS.get(name, {})) for name in args.methods}
    for item in args.overrides:
        name, _, pair = item.partition(":")
        field, _, value = pair.partition("=")
        methods.setdefault(name, {})[field] = value
    steps = sorted(set(args.steps))
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; methods {methods}", flush=True)
    for name in args.scene:
        capture = load_capture(Path(name) if Path(name).exists() else root / name, downscale=args.downscale)
        scene = fitted_scene(Path(name).name, capture, args.downscale, args.fit_iters)
        extent = scene_extent(capture.cameras)
        for kind in args.kinds:
            oracle = make_oracle(kind, scene, capture.cameras, extent=extent)
            touched = int(oracle.touched_source.sum()) if kind != "add" else int(oracle.touched_edited.sum())
            for m in args.views:
                picks = select_views(capture.cameras, m)
                truth = oracle_renders(oracle, capture.cameras, picks, RENDER)
                for start in args.starts:
                    for method, overrides in methods.items():
                        if start == "cold" and method != next(iter(methods)):
                            continue  # a cold start is a base fit: the refit settings do not apply
                        for row in run_case(capture, scene, oracle, truth, picks, start, overrides, steps):
                            row.update(scene=capture.name, kind=kind, touched=touched, views=m, start=start,
                                       method=method if start == "warm" else "fit",
                                       source_gaussians=scene.num_gaussians, pixels=capture.cameras.width)
                            print(json.dumps(row), flush=True)
                            with args.out.open("a") as out:
                                out.write(json.dumps(row) + "\n")


def print_table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print("| scene | kind | M | start | method | steps | novel PSNR | novel SSIM | train PSNR | preservation PSNR | "
          "Gaussians | s/step | s |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scene']} | {r['kind']} | {r['views']} | {r['start']} | {r['method']} | {r['steps']} | "
              f"{r['novel_psnr']:.2f} | {r['novel_ssim']:.3f} | {r['train_psnr']:.2f} | {r['preservation_psnr']:.2f} | "
              f"{int(r['num_gaussians'])} | {r['s_per_step']:.3f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()

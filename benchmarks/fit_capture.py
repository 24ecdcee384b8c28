"""Held-out PSNR against wall time for a base 3DGS fit of a real capture (CPU by default).

Usage:
    python benchmarks/fit_capture.py --scene stone_horse --downscale 8 --iters 800 --eval-every 50
    python benchmarks/fit_capture.py --scene face --downscale 4 --iters 300 --set lr_sh0=0.01

Prints one line per evaluation (iteration, training seconds, loss, held-out PSNR, Gaussians) and a summary; every
8th frame is held out. `--set name=value` overrides a `ReconConfig` field (repeatable). The defaults below adapt
gsplat's 30k-step schedule to a few hundred CPU steps: densification starts at step 100 and runs every 100 steps,
no opacity reset (it costs ~200 steps to recover, more than a CPU run has), and a CPU Gaussian budget.
Results go to benchmarks/results/fit.md (by hand: the machine is shared, so timings need context).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch

from rl3dedit.recon import ReconConfig, fit
from rl3dedit.scene import load_capture

DATA = Path("/work/shared/data")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", default="stone_horse", help="capture folder name under /work/shared/data or a path")
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--iters", type=int, default=800)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", type=float, nargs=3, default=(1.0, 1.0, 1.0))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared, oversubscribed CPU)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="ReconConfig field=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    path = Path(args.scene) if Path(args.scene).exists() else DATA / args.scene
    capture = load_capture(path, downscale=args.downscale)
    fields = dict(CPU_DEFAULTS, eval_every=args.eval_every, **_parse_overrides(args.overrides))
    config = ReconConfig(**fields)
    print(f"# {capture.name} downscale {args.downscale}: {len(capture)} frames at {capture.cameras.width}x"
          f"{capture.cameras.height}, {0 if capture.points is None else capture.points.shape[0]} SfM points")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; overrides {fields}")
    print("iter\ttrain_s\tloss\tholdout_psnr")

    def report(iteration: int, total: int, info: dict[str, float]) -> None:
        if "holdout_psnr" in info:
            print(f"{iteration}\t-\t{info['loss']:.4f}\t{info['holdout_psnr']:.2f}\t{int(info['num_gaussians'])} G",
                  flush=True)

    result = fit(capture, config, iters=args.iters, seed=args.seed, background=tuple(args.background), progress=report)
    for step in result.history:
        print(f"{step.iteration}\t{step.seconds:.1f}\t{step.loss:.4f}\t{step.holdout_psnr:.2f}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.metrics.items()}))


if __name__ == "__main__":
    main()

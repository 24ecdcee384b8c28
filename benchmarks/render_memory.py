"""Peak host memory of a gradient-free turntable render by `render.chunk_size` (our CPU rasterizer).

Each setting runs in its own process (peak RSS is per process):
    nice -n 10 python benchmarks/render_memory.py --gaussians 100000 --frames 36 --chunks 36 4 1
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def _one(gaussians: int, frames: int, chunk: int, size: int) -> None:
    import torch

    from rl3dedit.render import render_images
    from rl3dedit.synthetic import make_synthetic_scene
    from rl3dedit.views import orbit_cameras

    torch.set_num_threads(1)
    scene = make_synthetic_scene(gaussians, seed=0)
    gen = torch.Generator().manual_seed(0)
    scene = scene.with_params(sh_rest=torch.randn(gaussians, 15, 3, generator=gen) * 0.05)  # SH degree 3
    cameras = orbit_cameras(frames, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=size,
                            height=size, fov_deg=50.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    render_images(scene, cameras, (1.0, 1.0, 1.0), backend="torch", chunk_size=chunk)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {gaussians} | {frames} | {chunk} | {before:.0f} | {peak:.0f} | {peak - before:.0f} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gaussians", type=int, default=100_000)
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--chunks", type=int, nargs="+", default=[36, 4, 1])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        _one(args.gaussians, args.frames, args.one, args.size)
        return
    print("| Gaussians | frames | chunk | RSS before (MiB) | peak RSS (MiB) | growth (MiB) | seconds |")
    print("|---|---|---|---|---|---|---|")
    for chunk in args.chunks:
        subprocess.run([sys.executable, __file__, "--gaussians", str(args.gaussians), "--frames", str(args.frames),
                        "--size", str(args.size), "--one", str(chunk)], check=True)


if __name__ == "__main__":
    main()

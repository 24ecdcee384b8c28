"""CPU speed and memory of our PyTorch rasterizer: forward and forward+backward across Gaussian counts and sizes.

Each configuration runs in its own subprocess so that peak resident memory (ru_maxrss) is per configuration;
"held" is the memory autograd keeps for backward (bytes of saved tensors), the number that bounds how many
views a fit can batch. The scene is a random ball of Gaussians whose scales shrink with N^(-1/3), so screen
coverage is similar at every count; cameras sit on a ring of radius 3 looking at the origin.

Usage: python benchmarks/render_cpu.py [--counts 1000 5000 20000] [--sizes 64 128 256] [--views 1]
       [--repeats 3] [--out /tmp/render_table.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch


def _scene(n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    radius = torch.rand(n, 1, generator=gen) ** (1 / 3)
    scale = 0.8 * n ** (-1 / 3)
    return {
        "means": direction * radius,
        "quats": torch.randn(n, 4, generator=gen),
        "log_scales": math.log(scale) + 0.3 * torch.randn(n, 3, generator=gen),
        "opacity_logits": torch.randn(n, generator=gen),
        "sh_coeffs": torch.randn(n, 16, 3, generator=gen) * 0.3,
    }


def _cameras(num_views: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    viewmats = []
    for i in range(num_views):
        angle = 2 * math.pi * i / max(num_views, 1)
        centre = torch.tensor([3 * math.sin(angle), 0.0, -3 * math.cos(angle)])
        forward = -centre / centre.norm()
        right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward)
        rot = torch.stack([right, torch.linalg.cross(forward, right), forward])
        vm = torch.eye(4)
        vm[:3, :3], vm[:3, 3] = rot, -rot @ centre
        viewmats.append(vm)
    K = torch.tensor([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]])
    return torch.stack(viewmats), K.repeat(num_views, 1, 1)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def run_one(n: int, size: int, num_views: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` forward and forward+backward seconds (the minimum is the least disturbed by other jobs on
    a shared CPU), MB held for backward, and peak RSS for one setting."""
    from rl3dedit.render import rasterize

    torch.set_num_threads(int(os.environ.get("RENDER_BENCH_THREADS", "2")))
    gen = torch.Generator().manual_seed(0)
    params = {k: v.requires_grad_(True) for k, v in _scene(n, gen).items()}
    viewmats, Ks = _cameras(num_views, size)

    def forward() -> torch.Tensor:
        colors, alphas, _ = rasterize(
            params["means"], params["quats"], params["log_scales"].exp(), torch.sigmoid(params["opacity_logits"]),
            params["sh_coeffs"], viewmats, Ks, size, size, sh_degree=3, render_mode="RGB+ED",
        )
        return colors.sum() + alphas.sum()

    forward().backward()  # warm-up
    fwd, both = [], []
    for _ in range(repeats):
        with torch.no_grad():
            t0 = time.perf_counter()
            forward()
            fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        held = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal held
            held += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = forward()
        loss.backward()
        both.append(time.perf_counter() - t0)
        for p in params.values():
            p.grad = None
    return {"forward_s": min(fwd), "fwd_bwd_s": min(both), "held_mb": held / 2**20, "peak_rss_mb": _rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write a markdown table here")
    parser.add_argument("--one", type=int, nargs=2, metavar=("N", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.views, args.repeats)))
        return

    header = ("| Gaussians | image | views | forward (s) | forward+backward (s) | held for backward (MB) "
              "| peak RSS (MB) |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    print(header)
    for n in args.counts:
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--one", str(n), str(size), "--views", str(args.views),
                   "--repeats", str(args.repeats)]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            line = (f"| {n} | {size}x{size} | {args.views} | {result['forward_s']:.3f} | {result['fwd_bwd_s']:.3f} | "
                    f"{result['held_mb']:.0f} | {result['peak_rss_mb']:.0f} |")
            print(line, flush=True)
            lines.append(line)
    if args.out is not None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        threads = os.environ.get("RENDER_BENCH_THREADS", "2")
        note = (f"\nMeasured {stamp} on a 2-core CPU ({platform.processor() or platform.machine()}, torch "
                f"{torch.__version__}, {threads} torch threads) while other jobs shared the CPU; "
                f"SH degree 3, mode RGB+ED, best of {args.repeats}.\n")
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n" + note)
        tmp.replace(args.out)


if __name__ == "__main__":
    main()

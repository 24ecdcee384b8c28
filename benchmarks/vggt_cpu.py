"""CPU forward time and peak memory of our VGGT (tiny and full-size random weights), one process per case.

Usage: python benchmarks/vggt_cpu.py [--cases tiny-2,tiny-9,full-2,full-9] [--threads 2]
Tiny cases are timed after one warm-up forward, full-size cases on their single (first) forward.
Each case runs in a fresh subprocess so that peak RSS (ru_maxrss) belongs to that case alone. Full size builds
VGGT-1B without the track head (the reward configuration) with random weights: no download.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

# name -> (config, frames, height, width)
CASES: dict[str, tuple[str, int, int, int]] = {
    "tiny-2": ("tiny", 2, 42, 56),
    "tiny-9": ("tiny", 9, 42, 56),
    "tiny-9-518": ("tiny", 9, 392, 518),
    "full-2": ("full", 2, 140, 196),
    "full-9": ("full", 9, 140, 196),
    "full-2-518": ("full", 2, 294, 518),
    "dpt-9-518": ("dpt", 9, 518, 518),
}


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def run_dpt_case(name: str, frames: int, height: int, width: int, threads: int) -> dict[str, float | str | int]:
    """One full-size DPT head (VGGT-1B depth head, fp32) on random aggregator tokens: its activation memory."""
    from rl3dedit.geometry.vggt import VGGTConfig
    from rl3dedit.geometry.vggt.heads import DPTHead

    cfg = VGGTConfig().depth_head
    head = DPTHead(cfg).eval()
    tokens_per_frame = 5 + (height // 14) * (width // 14)
    gen = torch.Generator().manual_seed(0)
    tokens = [torch.randn(1, frames, tokens_per_frame, cfg.dim_in, generator=gen)
              if i in cfg.intermediate_layer_idx else None for i in range(24)]
    rss_inputs = _rss_gb()
    start = time.perf_counter()
    with torch.inference_mode():
        head(tokens, (height, width), 5, frames_chunk_size=8)
    return {
        "case": name, "frames": frames, "height": height, "width": width, "threads": threads,
        "params": sum(p.numel() for p in head.parameters()), "forward_s": round(time.perf_counter() - start, 3),
        "rss_after_build_gb": round(rss_inputs, 3), "peak_rss_gb": round(_rss_gb(), 3),
    }


def run_case(name: str, threads: int) -> dict[str, float | str | int]:
    from rl3dedit.geometry.vggt import VGGTConfig, build_tiny_vggt

    torch.set_num_threads(threads)
    kind, frames, height, width = CASES[name]
    if kind == "dpt":
        return run_dpt_case(name, frames, height, width, threads)
    start = time.perf_counter()
    config = VGGTConfig.tiny() if kind == "tiny" else VGGTConfig(enable_track=False)
    model = build_tiny_vggt(seed=0, config=config)
    build_s = time.perf_counter() - start
    rss_weights = _rss_gb()
    images = torch.rand(frames, 3, height, width, generator=torch.Generator().manual_seed(0))
    if kind == "tiny":  # warm-up (thread pools, kernel selection); too costly to repeat at full size
        model.predict(images)
    start = time.perf_counter()
    out = model.predict(images)
    forward_s = time.perf_counter() - start
    assert torch.isfinite(out.depth).all()
    return {
        "case": name, "frames": frames, "height": height, "width": width, "threads": threads,
        "params": sum(p.numel() for p in model.parameters()), "build_s": round(build_s, 2),
        "forward_s": round(forward_s, 3), "rss_after_build_gb": round(rss_weights, 3),
        "peak_rss_gb": round(_rss_gb(), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default="tiny-2,tiny-9,tiny-9-518,full-2,full-9")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.threads)))
        return
    for name in args.cases.split(","):
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}; choose from {', '.join(CASES)}")
        proc = subprocess.run([sys.executable, __file__, "--case", name, "--threads", str(args.threads)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            print(f"{name}: failed\n{proc.stderr[-2000:]}")
            continue
        print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()

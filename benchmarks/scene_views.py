"""Speed of scene I/O and view packing on CPU: splat .ply write/read, capture loading, view selection, grids.

Each timing is the median of `--repeats` runs (after one warm-up). The capture timings need the `face` capture (65
frames at 512 px with OPENCV distortion) under `--data-root` (default `$RL3DEDIT_DATA_ROOT`) and are skipped when
neither is given.

Usage: python benchmarks/scene_views.py [--gaussians 100000] [--repeats 3] [--data-root data]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from data_root import add_data_root_argument, data_root

from rl3dedit.scene import GaussianScene, load_capture, read_ply, write_ply
from rl3dedit.views import orbit_cameras, select_views, split, tile


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _scene(n: int) -> GaussianScene:
    g = torch.Generator().manual_seed(0)
    return GaussianScene(
        torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g),
        torch.randn(n, generator=g), torch.randn(n, 3, generator=g), torch.randn(n, 15, 3, generator=g),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    add_data_root_argument(parser)
    args = parser.parse_args()
    root = data_root(parser, args.data_root, required=False)
    face = None if root is None else root / "face"
    if face is not None and not face.is_dir():
        parser.error(f"{face} does not exist: the capture timings need the face capture under the data root")
    torch.set_num_threads(2)

    rows: list[tuple[str, float]] = []
    scene = _scene(args.gaussians)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.ply"
        rows.append((f"write_ply, {args.gaussians} Gaussians, SH 3", _median_seconds(lambda: write_ply(scene, path), args.repeats)))
        rows.append((f"read_ply, {args.gaussians} Gaussians, SH 3", _median_seconds(lambda: read_ply(path), args.repeats)))

    if face is None:
        print("capture timings skipped: pass --data-root DIR or set RL3DEDIT_DATA_ROOT (a folder holding face/)")
    else:
        for downscale in (1, 4):
            rows.append((
                f"load_capture(face, downscale={downscale}) (65 frames, undistorted)",
                _median_seconds(lambda: load_capture(face, downscale=downscale), args.repeats),
            ))
        cameras = load_capture(face, downscale=8).cameras
        rows.append(("select_views(face: 65 cameras, m=9)", _median_seconds(lambda: select_views(cameras, 9), args.repeats)))

    ring = orbit_cameras(200, center=(0, 0, 0), radius=3.0, elevation_deg=20.0, width=64, height=64, fov_deg=50.0)
    rows.append(("select_views(200-camera orbit, m=9)", _median_seconds(lambda: select_views(ring, 9), args.repeats)))
    views64, views512 = torch.rand(9, 3, 64, 64), torch.rand(9, 3, 512, 512)
    rows.append(("tile+split aligned, 9 x 64 px", _median_seconds(lambda: split(tile(views64), view_size=(64, 64)), args.repeats)))
    rows.append((
        "tile+split release, 9 x 512 px (-> 1024 px bucket -> back)",
        _median_seconds(lambda: split(tile(views512, layout="release"), layout="release", view_size=(512, 512)), args.repeats),
    ))

    print("| operation | median seconds |")
    print("|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()

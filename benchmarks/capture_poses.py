"""`rl3dedit capture` on the shipped captures with their poses withheld: registration, pose error, fit quality.

Usage:
    nice -n 10 python benchmarks/capture_poses.py --scene face --scene stone_horse --fit-iters 600 --downscale 8

For each scene: the images alone are copied to a temporary folder and posed with `run_capture` (COLMAP, CPU, default
settings); then (1) the fraction of images registered, (2) rotation and camera-centre errors against the shipped
poses after a similarity (Umeyama) alignment of the camera centres (centre error relative to the shipped cameras'
mean distance from their centroid), and (3) held-out PSNR of a short base fit (`recon.fit`, every 8th frame held out)
with the recovered poses and with the given poses. Prints a JSON summary; record it in benchmarks/RESULTS.md by hand
with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from rl3dedit.capture import CaptureConfig, pose_errors, run_capture
from rl3dedit.recon import ReconConfig, fit
from rl3dedit.scene import load_cameras, load_capture

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CPU_FIT = {"refine_start_iter": 100, "refine_every": 100, "reset_every": 100_000, "max_gaussians": 30_000}


def _fit_psnr(data: Path, downscale: int, iters: int) -> dict:
    capture = load_capture(data, downscale=downscale)
    result = fit(capture, ReconConfig(**CPU_FIT), iters=iters, seed=0, holdout_every=8, background=(1.0, 1.0, 1.0))
    m = result.metrics
    return {"holdout_psnr": round(m["holdout_psnr"], 2), "holdout_ssim": round(m["holdout_ssim"], 3),
            "size": [capture.cameras.width, capture.cameras.height], "fit_s": round(m["wall_time_s"], 1)}


def measure(scene: str, args: argparse.Namespace) -> dict:
    source = args.data / scene
    with tempfile.TemporaryDirectory(prefix=f"capture-{scene}-") as tmp_name:
        tmp = Path(tmp_name)
        shutil.copytree(source / "images", tmp / "photos")  # images only: transforms.json and points withheld
        config = CaptureConfig(matcher=args.matcher, camera_model=args.camera_model, num_threads=args.threads)
        start = time.perf_counter()
        report = run_capture(tmp / "photos", tmp / "posed", config)
        capture_s = time.perf_counter() - start
        recovered = load_cameras(tmp / "posed")
        reference = load_cameras(source)
        index = {p.name: i for i, p in enumerate(reference.image_paths)}
        order = [index[p.name] for p in recovered.image_paths]
        row = {
            "scene": scene,
            "images": report.num_images,
            "registered": len(report.registered),
            "registered_fraction": round(report.registered_fraction, 3),
            "unregistered": report.unregistered,
            "models": report.model_sizes,
            "matcher": report.matcher,
            "camera_model": args.camera_model,
            "points": report.num_points,
            "reprojection_error_px": round(report.mean_reprojection_error_px or float("nan"), 3),
            "capture_s": round(capture_s, 1),
            "pose": {k: round(v, 4) for k, v in pose_errors(recovered.viewmats, reference.viewmats[order]).items()},
        }
        if args.fit_iters > 0:
            row["fit_recovered"] = _fit_psnr(tmp / "posed", args.downscale, args.fit_iters)
            row["fit_given"] = _fit_psnr(source, args.downscale, args.fit_iters)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=None, help="face, stone_horse (repeatable)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--matcher", default="auto")
    parser.add_argument("--camera-model", default="SIMPLE_RADIAL")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fit-iters", type=int, default=600)
    parser.add_argument("--downscale", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(scene, args) for scene in (args.scene or ["face", "stone_horse"])]
    print(json.dumps({"platform": platform.platform(), "cpus": torch.get_num_threads(), "results": rows}, indent=1))


if __name__ == "__main__":
    main()

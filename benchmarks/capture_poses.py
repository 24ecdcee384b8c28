"""`rl3dedit capture` on the shipped captures with their poses withheld: registration, pose error, fit quality.

Usage (the captures are folders under `--data-root`, default `$RL3DEDIT_DATA_ROOT`):
    nice -n 10 python benchmarks/capture_poses.py --data-root data --scene face --scene stone_horse --fit-iters 200
    nice -n 10 python benchmarks/capture_poses.py --scene face --posed DIR     # reuse an earlier capture of face

For each scene: the images alone are copied to a temporary folder and posed with `run_capture` (COLMAP, CPU, default
settings); then (1) the fraction of images registered, (2) rotation and camera-centre errors against the shipped
poses after a similarity (Umeyama) alignment of the camera centres (centre error relative to the shipped cameras'
mean distance from their centroid), and (3) held-out PSNR of a short base fit (`recon.fit`, every 8th frame held out)
with the recovered poses and with the given poses (the tiny preset's fit settings, its downscale unless --downscale).
Prints one JSON line per scene as it finishes; record them in benchmarks/RESULTS.md by hand with the machine and its
load.
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
from data_root import add_data_root_argument, data_root

from rl3dedit.capture import CaptureConfig, pose_errors, read_capture_report, run_capture
from rl3dedit.config import load_config
from rl3dedit.recon import fit
from rl3dedit.scene import load_cameras, load_capture


def _fit_psnr(data: Path, downscale: int | None, iters: int) -> dict:
    config = load_config("tiny")
    capture = load_capture(data, downscale=downscale or config.scene.downscale)
    result = fit(capture, config.recon, iters=iters, seed=config.seed, holdout_every=8,
                 background=tuple(config.render.background))
    m = result.metrics
    return {"holdout_psnr": round(m["holdout_psnr"], 2), "holdout_ssim": round(m["holdout_ssim"], 3),
            "size": [capture.cameras.width, capture.cameras.height], "fit_s": round(m["wall_time_s"], 1)}


def measure(scene: str, args: argparse.Namespace) -> dict:
    source = args.data_root / scene
    with tempfile.TemporaryDirectory(prefix=f"capture-{scene}-") as tmp_name:
        tmp = Path(tmp_name)
        shutil.copytree(source / "images", tmp / "photos")  # images only: transforms.json and points withheld
        posed = args.posed or tmp / "posed"
        start = time.perf_counter()
        if args.posed is None:
            config = CaptureConfig(matcher=args.matcher, camera_model=args.camera_model, num_threads=args.threads)
            run_capture(tmp / "photos", posed, config)
        capture_s = time.perf_counter() - start
        report = read_capture_report(posed)
        recovered = load_cameras(posed)
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
            "capture_s": round(capture_s, 1) if args.posed is None else report.timings_s,
            "pose": {k: round(v, 4) for k, v in pose_errors(recovered.viewmats, reference.viewmats[order]).items()},
        }
        if args.fit_iters > 0:
            row["fit_recovered"] = _fit_psnr(posed, args.downscale, args.fit_iters)
            row["fit_given"] = _fit_psnr(source, args.downscale, args.fit_iters)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=None, help="face, stone_horse (repeatable)")
    add_data_root_argument(parser)
    parser.add_argument("--matcher", default="auto")
    parser.add_argument("--camera-model", default="OPENCV")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fit-iters", type=int, default=200)
    parser.add_argument("--downscale", type=int, default=None)
    parser.add_argument("--posed", type=Path, default=None, help="an earlier capture of the (single) --scene")
    args = parser.parse_args()
    args.data_root = data_root(parser, args.data_root)
    torch.set_num_threads(args.threads)
    print(json.dumps({"platform": platform.platform(), "threads": torch.get_num_threads()}), flush=True)
    for scene in args.scene or ["face", "stone_horse"]:
        print(json.dumps(measure(scene, args)), flush=True)


if __name__ == "__main__":
    main()

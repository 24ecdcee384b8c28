"""Feed-forward posing with our VGGT: camera head for poses and intrinsics, depth head for a point cloud.

This is the route the paper's AnySplat stage stands for (RL3DEdit appendix S2.3 warm-starts its refit with AnySplat, a
feed-forward model that builds scenes from unposed images): no feature matching, one forward pass over all frames.
Poses are up to scale in the first camera's frame. The dataset is written as nerfstudio `transforms.json` (PINHOLE,
at VGGT's input resolution) + `sparse_pc.ply`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from rl3dedit.capture.config import CaptureConfig
from rl3dedit.files import write_json
from rl3dedit.progress import Progress

logger = logging.getLogger(__name__)

MAX_POINTS = 100_000
"""Points kept for `sparse_pc.ply` (a random subset of the confident depth points; enough to initialise a fit)."""


def _load_model(config: CaptureConfig):
    from rl3dedit.geometry.config import VerifierConfig
    from rl3dedit.geometry.vggt import load_verifier

    try:
        return load_verifier(VerifierConfig(model=config.vggt_model, tiny_seed=config.seed))
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"--poses vggt needs VGGT-1B weights and they did not resolve: {exc}. Use the default --poses colmap, "
            "or pass --vggt-model /path/to/model.pt"
        ) from exc


def pose_with_vggt(
    images: list[Path], out_dir: Path, config: CaptureConfig, progress: Progress | None = None
) -> dict:
    """Pose `images` with VGGT and write `out_dir/images/*.png`, `transforms.json` and `sparse_pc.ply`.

    Returns a summary (number of frames, image size, number of points).
    """
    from rl3dedit.geometry.vggt import (
        extrinsic_to_viewmats,
        pose_encoding_to_extri_intri,
        preprocess_images,
        unproject_depth_map_to_point_map,
    )
    from rl3dedit.scene.nerfstudio import viewmats_to_opengl_c2w
    from rl3dedit.views import load_image, save_image

    if progress is not None:
        progress("VGGT (load)", 0, 2)
    model = _load_model(config)
    frames = preprocess_images([load_image(p) for p in images], mode="crop")  # (S, 3, H, W), H and W multiples of 14
    height, width = frames.shape[-2:]
    if progress is not None:
        progress("VGGT (forward)", 1, 2)
    out = model.predict(frames[None])
    extrinsic, intrinsic = pose_encoding_to_extri_intri(out.pose_enc, (height, width))
    extrinsic, intrinsic = extrinsic[0].double(), intrinsic[0].double()
    viewmats = extrinsic_to_viewmats(extrinsic)
    depth, conf = out.depth[0], out.depth_conf[0]
    points = unproject_depth_map_to_point_map(depth, extrinsic, intrinsic)  # (S, H, W, 3)
    keep = conf >= torch.quantile(conf.flatten().float(), config.vggt_confidence_quantile)
    xyz = points[keep].float()
    rgb = frames.permute(0, 2, 3, 1)[keep]
    if xyz.shape[0] > MAX_POINTS:
        chosen = torch.randperm(xyz.shape[0], generator=torch.Generator().manual_seed(config.seed))[:MAX_POINTS]
        xyz, rgb = xyz[chosen], rgb[chosen]

    (out_dir / "images").mkdir(parents=True)
    c2w = viewmats_to_opengl_c2w(viewmats)
    records = []
    for i, path in enumerate(images):
        name = f"images/{path.stem}.png"
        save_image(frames[i], out_dir / name)
        K = intrinsic[i]
        records.append({
            "file_path": name, "transform_matrix": c2w[i].tolist(),
            "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
        })
    meta = {"camera_model": "PINHOLE", "w": int(width), "h": int(height), "ply_file_path": "sparse_pc.ply",
            "frames": records}
    write_json(out_dir / "transforms.json", meta)
    _write_points(out_dir / "sparse_pc.ply", xyz.numpy(), rgb.numpy())
    if progress is not None:
        progress("VGGT (written)", 2, 2)
    return {"num_frames": len(images), "size": [int(width), int(height)], "num_points": int(xyz.shape[0])}


def _write_points(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """A binary x y z + uint8 red green blue `.ply` (the layout nerfstudio writes for `sparse_pc.ply`)."""
    from plyfile import PlyData, PlyElement

    rows = np.empty(xyz.shape[0], dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                          ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, c in enumerate("xyz"):
        rows[c] = xyz[:, i]
    colors = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    for i, c in enumerate(("red", "green", "blue")):
        rows[c] = colors[:, i]
    PlyData([PlyElement.describe(rows, "vertex")]).write(str(path))

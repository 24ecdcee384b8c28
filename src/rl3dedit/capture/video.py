"""Sampling a video to a set of sharp still frames (imageio with its ffmpeg plugin)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rl3dedit.progress import Progress

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def sharpness(frame: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (higher is sharper; motion blur lowers it).

    Args:
        frame: (H, W, 3) uint8 RGB. Measured on every second pixel: blur shows at that scale too and it halves the cost.
    """
    grey = frame[::2, ::2].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())


def pick_sharpest(scores: list[float], num_frames: int) -> list[int]:
    """Indices of the sharpest frame in each of `num_frames` equal windows over the video (all frames if fewer)."""
    if len(scores) <= num_frames:
        return list(range(len(scores)))
    edges = np.linspace(0, len(scores), num_frames + 1).round().astype(int)
    return [int(lo + np.argmax(scores[lo:hi])) for lo, hi in zip(edges[:-1], edges[1:])]


def _reader(path: Path):
    import imageio.v2 as imageio

    try:
        return imageio.get_reader(path, "ffmpeg")
    except Exception as exc:  # imageio raises several types for unreadable containers
        raise ValueError(f"{path}: cannot read the video ({exc})") from exc


def sample_video(
    path: str | Path,
    out_dir: str | Path,
    num_frames: int,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the sharpest frame of each of `num_frames` windows of the video as `out_dir/frame_00001.jpg`, ...

    Two passes over the video: one scores every frame, one writes the chosen ones, so memory holds one frame at a time.
    Returns the written paths in video order.
    """
    from PIL import Image

    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores: list[float] = []
    with _reader(path) as reader:
        for frame in reader:
            scores.append(sharpness(np.asarray(frame)))
            if progress is not None and len(scores) % 10 == 0:
                progress("scoring video frames", len(scores), -1)
    if len(scores) < 2:
        raise ValueError(f"{path}: the video has {len(scores)} frame(s); a capture needs several views")
    chosen = pick_sharpest(scores, num_frames)
    logger.info("%s: %d frames, keeping the sharpest of each of %d windows", path, len(scores), len(chosen))
    wanted = {index: k for k, index in enumerate(chosen)}
    written: list[Path] = []
    with _reader(path) as reader:
        for index, frame in enumerate(reader):
            if index in wanted:
                target = out_dir / f"frame_{wanted[index] + 1:05d}.jpg"
                Image.fromarray(np.asarray(frame)).convert("RGB").save(target, quality=95)
                written.append(target)
                if progress is not None:
                    progress("writing video frames", len(written), len(chosen))
            if len(written) == len(chosen):
                break
    return written

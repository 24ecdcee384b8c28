"""`run_capture`: a folder of photos or a video -> a posed dataset that `load_capture` (fit, edit --data) reads.

Output folder (written atomically, complete or absent):
    images/            undistorted pinhole images of the registered photos
    sparse/0/          the COLMAP model (PINHOLE camera, poses, triangulated points)      [poses: colmap]
    transforms.json, sparse_pc.ply                                                       [poses: vggt]
    capture.json       what happened: registered/unregistered images, models, matcher, timings
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rl3dedit.capture.config import CaptureConfig
from rl3dedit.capture.sfm import CaptureError, common_size, list_images, photo_files, run_sfm, undistort
from rl3dedit.capture.video import VIDEO_SUFFIXES, is_video, sample_video
from rl3dedit.files import atomic_run_dir, read_json, user_cache_dir, write_json
from rl3dedit.progress import Progress

logger = logging.getLogger(__name__)

REPORT_FILE = "capture.json"


@dataclass
class CaptureReport:
    """What `run_capture` did (also written to `capture.json`).

    Fields: `num_images` photos in (after video sampling), `image_size` [width, height] of the images written (after
    undistortion), `registered`/`unregistered` image names, `model_sizes` registered images per COLMAP model
    (largest first, the first one kept), `notes` for the user (models dropped, images left out).
    """

    source: str
    out_dir: str
    poses: str
    num_images: int
    image_size: list[int]
    registered: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    model_sizes: list[int] = field(default_factory=list)
    matcher: str | None = None
    num_points: int = 0
    mean_reprojection_error_px: float | None = None
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def registered_fraction(self) -> float:
        return len(self.registered) / max(1, self.num_images)


def is_unposed_folder(path: str | Path) -> bool:
    """A folder of photos with no poses (no transforms.json, no COLMAP model): what `edit --data` captures first."""
    from rl3dedit.scene.capture import find_colmap_model

    path = Path(path)
    if not path.is_dir() or (path / "transforms.json").is_file() or find_colmap_model(path) is not None:
        return False
    return bool(photo_files(path))


def is_capture_output(path: str | Path) -> bool:
    """Whether `path` is a folder written by `run_capture` (the only existing folders it may replace)."""
    return (Path(path) / REPORT_FILE).is_file()


def run_capture(
    source: str | Path,
    out_dir: str | Path,
    config: CaptureConfig | None = None,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> CaptureReport:
    """Pose a folder of photos (or a video, sampled first) and write a dataset to `out_dir`.

    Args:
        source: a folder of .jpg/.png photos of one scene from one camera, or a video file.
        out_dir: output folder; refused when it exists with foreign content (or an earlier capture without
            `overwrite`).
        progress: `rl3dedit.progress.Progress`, called per stage (total -1 while unknown).
    Raises:
        CaptureError: the photos cannot be posed (too few, mixed sizes, too few registered), with a message naming
            the images.
        FileNotFoundError: `source` does not exist, or `poses: vggt` without resolvable weights.
    """
    config = config or CaptureConfig()
    source, out_dir = Path(source).expanduser(), Path(out_dir).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such folder of photos or video")
    timings: dict[str, float] = {}
    with (tempfile.TemporaryDirectory(prefix="rl3dedit-capture-") as work_name,
          atomic_run_dir(out_dir, overwrite=overwrite) as staging):
        work = Path(work_name)
        start = time.perf_counter()
        if is_video(source):
            sample_video(source, work / "frames", config.video_frames, progress)
            image_dir = work / "frames"
            timings["sample_video"] = time.perf_counter() - start
        elif source.is_dir():
            image_dir = source
        else:
            raise CaptureError(f"{source}: neither a folder of photos nor a video ({', '.join(VIDEO_SUFFIXES)})")
        images = list_images(image_dir, config.min_images)
        width, height = common_size(images)
        report = CaptureReport(
            source=str(source), out_dir=str(out_dir), poses=config.poses, num_images=len(images),
            image_size=[width, height],
        )
        if config.poses == "vggt":
            from rl3dedit.capture.feedforward import pose_with_vggt

            start = time.perf_counter()
            summary = pose_with_vggt(images, staging, config, progress)
            timings["vggt"] = time.perf_counter() - start
            report.registered = [p.name for p in images]
            report.num_points = summary["num_points"]
            report.image_size = summary["size"]
        else:
            start = time.perf_counter()
            result = run_sfm(images, work, config, progress)
            timings["sfm"] = time.perf_counter() - start
            start = time.perf_counter()
            if progress is not None:
                progress("undistorting", 0, 1)
            undistort(result, image_dir, work, staging)
            timings["undistort"] = time.perf_counter() - start
            rec = result.reconstruction
            report.registered, report.unregistered = result.registered, result.unregistered
            report.model_sizes, report.matcher, report.notes = result.model_sizes, result.matcher, result.notes
            report.num_points = int(rec.num_points3D())
            report.image_size = list(common_size(list_images(staging / "images", 1)))  # after undistortion
            report.mean_reprojection_error_px = float(rec.compute_mean_reprojection_error())
        report.timings_s = timings
        write_json(staging / REPORT_FILE, asdict(report))
    return report


def read_capture_report(folder: str | Path) -> CaptureReport:
    """The `capture.json` of a folder written by `run_capture`."""
    return CaptureReport(**read_json(Path(folder) / REPORT_FILE, "capture report"))


def default_cache_dir() -> Path:
    """Where `pose_folder` keeps posed copies of photo folders: $XDG_CACHE_HOME/rl3dedit/captures."""
    return user_cache_dir() / "captures"


def _folder_key(folder: Path, config: CaptureConfig) -> str:
    """A digest of the photos (names, sizes, modification times) and the settings: a changed folder poses again."""
    import hashlib

    digest = hashlib.sha1(config.model_dump_json().encode())
    for path in photo_files(folder):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:12]


def pose_folder(
    folder: str | Path, config: CaptureConfig | None = None, cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """A posed copy of a folder of bare photos (`run_capture` once, then reused while the photos are unchanged).

    Used by `edit --data PHOTOS` and other scene sources: the copy lives in `cache_dir` (default `default_cache_dir()`)
    under the folder's name and a digest of its photos and `config`. Returns the dataset folder.
    """
    config = config or CaptureConfig()
    folder = Path(folder).expanduser().resolve()
    target = Path(cache_dir or default_cache_dir()) / f"{folder.name}-{_folder_key(folder, config)}"
    if is_capture_output(target):
        logger.info("%s has no poses; reusing its capture in %s", folder, target)
        return target
    logger.info("%s has no poses (no transforms.json or COLMAP model): posing it with %s into %s", folder,
                config.poses, target)
    report = run_capture(folder, target, config, overwrite=True, progress=progress)
    logger.info("posed %d of %d photos (%s)", len(report.registered), report.num_images, "; ".join(report.notes) or "ok")
    return target

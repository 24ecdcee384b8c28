"""Structure from motion on CPU with pycolmap: SIFT, matching, incremental mapping, undistortion to pinhole.

The steps are COLMAP's automatic reconstructor (https://colmap.github.io/tutorial.html) run through its Python API,
with one shared camera (photos from one device) and the checks a user needs when a capture does not pose: too few
images, images of mixed sizes, images left unregistered (named), several disconnected models (the largest is kept).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rl3dedit.capture.config import CaptureConfig
from rl3dedit.progress import Progress

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
"""What counts as a photo to pose (COLMAP's readers; the views' wider list also takes renders' formats)."""


def photo_files(folder: Path) -> list[Path]:
    """The photos directly in `folder`, sorted by name (the order of a video's frames)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


class CaptureError(ValueError):
    """The photos cannot be posed; the message says which images and why."""


@dataclass
class SfmResult:
    """The kept COLMAP model and what happened on the way.

    Fields:
        reconstruction: the largest model (a `pycolmap.Reconstruction`, world-to-camera OpenCV poses).
        registered, unregistered: image names in and out of the kept model (sorted).
        model_sizes: registered-image counts of every model COLMAP found, largest first.
        matcher: `exhaustive` or `sequential`.
    """

    reconstruction: object
    registered: list[str]
    unregistered: list[str]
    model_sizes: list[int]
    matcher: str
    notes: list[str] = field(default_factory=list)


def list_images(folder: Path, min_images: int) -> list[Path]:
    """The image files directly in `folder`, sorted by name (the order of a video's frames)."""
    if not folder.is_dir():
        raise CaptureError(f"{folder}: no such folder of photos")
    images = photo_files(folder)
    if len(images) < min_images:
        raise CaptureError(
            f"{folder}: {len(images)} image(s) ({', '.join(PHOTO_SUFFIXES)}); posing needs at least {min_images} "
            "overlapping photos (a few dozen around the object work best)"
        )
    return images


def common_size(images: list[Path]) -> tuple[int, int]:
    """(width, height) shared by all images; mixed sizes are an error listing each size with an example file."""
    from PIL import Image

    by_size: dict[tuple[int, int], list[str]] = {}
    for path in images:
        try:
            with Image.open(path) as image:
                by_size.setdefault(image.size, []).append(path.name)
        except OSError as exc:
            raise CaptureError(f"{path}: not a readable image ({exc})") from exc
    if len(by_size) > 1:
        listing = "; ".join(f"{w}x{h}: {len(names)} (e.g. {names[0]})" for (w, h), names in sorted(by_size.items()))
        raise CaptureError(
            f"{images[0].parent}: images have mixed sizes ({listing}); capture poses one camera, so resize or crop "
            "them to one size first"
        )
    return next(iter(by_size))


def choose_matcher(config: CaptureConfig, num_images: int) -> str:
    """All pairs for small sets (robust to any order); consecutive frames for large ones (linear cost, video order)."""
    if config.matcher != "auto":
        return config.matcher
    return "exhaustive" if num_images <= config.exhaustive_max_images else "sequential"


@contextlib.contextmanager
def quiet_colmap(pycolmap) -> Iterator[None]:
    """COLMAP logs every image at INFO through glog; keep errors only (our progress bar and checks say the rest)."""
    previous = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 2
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


def run_sfm(images: list[Path], work_dir: Path, config: CaptureConfig, progress: Progress | None = None) -> SfmResult:
    """Pose `images` (all in one folder) with COLMAP; intermediate files go to `work_dir`.

    Raises CaptureError when fewer than `config.min_registered_fraction` of the images (or fewer than
    `config.min_images`) are registered, naming the images left out.
    """
    import pycolmap

    def report(stage: str, index: int, total: int) -> None:
        if progress is not None:
            progress(stage, index, total)

    image_dir = images[0].parent
    names = [p.name for p in images]
    database = work_dir / "database.db"
    sparse = work_dir / "sparse"
    sparse.mkdir(parents=True, exist_ok=True)
    matcher = choose_matcher(config, len(images))
    pycolmap.set_random_seed(config.seed)
    device = pycolmap.Device.cpu
    with quiet_colmap(pycolmap):
        report("SIFT features", 0, len(images))
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = config.camera_model
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = config.num_threads
        extraction.max_image_size = config.max_image_size
        extraction.sift.max_num_features = config.max_num_features
        pycolmap.extract_features(
            database, image_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
            extraction_options=extraction, device=device,
        )
        report(f"{matcher} matching", 0, len(images))
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = config.num_threads
        if matcher == "exhaustive":
            pycolmap.match_exhaustive(database, matching_options=matching, device=device)
        else:
            pairing = pycolmap.SequentialPairingOptions()
            pairing.overlap = config.sequential_overlap
            pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing, device=device)
        mapping = pycolmap.IncrementalPipelineOptions()
        mapping.num_threads = config.num_threads
        mapping.random_seed = config.seed
        mapping.min_model_size = min(mapping.min_model_size, config.min_images)
        registered_count = [0]

        def next_image() -> None:
            registered_count[0] += 1
            report("incremental mapping", min(registered_count[0], len(images)), len(images))

        report("incremental mapping", 0, len(images))
        models = pycolmap.incremental_mapping(database, image_dir, sparse, options=mapping, next_image_callback=next_image)
    return _keep_largest(models, names, matcher, config)


def _keep_largest(models: dict, names: list[str], matcher: str, config: CaptureConfig) -> SfmResult:
    ranked = sorted(models.values(), key=lambda rec: rec.num_reg_images(), reverse=True)
    sizes = [rec.num_reg_images() for rec in ranked]
    where = f"the {len(names)} photos"
    if not ranked:
        raise CaptureError(
            f"COLMAP registered none of {where}: no image pair had enough matches to start a model. The photos "
            "need overlap (each object point seen in several photos) and texture; blurry or very similar-looking "
            "views also fail"
        )
    best = ranked[0]
    registered = sorted(best.images[i].name for i in best.reg_image_ids())
    unregistered = sorted(set(names) - set(registered))
    notes = []
    if len(ranked) > 1:
        notes.append(
            f"COLMAP found {len(ranked)} disconnected models ({', '.join(map(str, sizes))} images); keeping the largest"
        )
        logger.warning("%s; the other models' images are dropped", notes[-1])
    needed = max(config.min_images, math.ceil(config.min_registered_fraction * len(names) - 1e-9))
    if len(registered) < needed:
        shown = ", ".join(unregistered[:20]) + (f" (and {len(unregistered) - 20} more)" if len(unregistered) > 20 else "")
        raise CaptureError(
            f"COLMAP registered only {len(registered)} of {where} (need {needed}); not registered: {shown}. "
            "Add photos bridging those views, or remove blurry/unrelated ones"
        )
    if unregistered:
        notes.append(f"{len(unregistered)} image(s) not registered and left out: {', '.join(unregistered[:20])}")
        logger.warning(notes[-1])
    return SfmResult(best, registered, unregistered, sizes, matcher, notes)


def undistort(result: SfmResult, image_dir: Path, work_dir: Path, out_dir: Path) -> None:
    """Write the kept model's images undistorted to pinhole into `out_dir/images` and its model into `out_dir/sparse/0`.

    COLMAP's undistorter picks an output size that keeps every undistorted pixel valid; the model it writes is PINHOLE.
    """
    import pycolmap

    model_dir = work_dir / "kept"
    model_dir.mkdir(parents=True, exist_ok=True)
    result.reconstruction.write(model_dir)
    staging = work_dir / "undistorted"
    with quiet_colmap(pycolmap):
        pycolmap.undistort_images(staging, model_dir, image_dir, output_type="COLMAP")
    (out_dir / "sparse").mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / "images"), str(out_dir / "images"))
    shutil.move(str(staging / "sparse"), str(out_dir / "sparse" / "0"))

"""What the viewer shows from an edit run folder (`rl3dedit edit --out RUN`).

A run holds `edited.ply`, the source scene when the job fitted it (`base/scene.ply`), the edited views' cameras
(`cameras.json`, INRIA) and their images (`views/source/*.png` + `views/edited/*.png`; earlier runs wrote
`views/source_*.png` + `views/edited_*.png`). Every part is optional here; the viewer shows what there is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from rl3dedit.scene import Cameras

logger = logging.getLogger(__name__)

CAMERA_FILES = ("cameras.json", "views/cameras.json")
SOURCE_PLY_FILES = ("base/scene.ply", "source.ply")


@dataclass
class EditedViews:
    """The M edited views of a run: their cameras and their source and edited images.

    Fields:
        cameras: M cameras (OpenCV world-to-camera viewmats).
        source, edited: (M, 3, H, W) images in [0, 1] (either may hold 0 images when the run has none).
    """

    cameras: Cameras
    source: torch.Tensor
    edited: torch.Tensor

    def __post_init__(self) -> None:
        for name, images in (("source", self.source), ("edited", self.edited)):
            if images.shape[0] not in (0, len(self.cameras)):
                raise ValueError(f"edited views: {len(self.cameras)} cameras but {images.shape[0]} {name} images")


@dataclass
class EditRun:
    """The parts of an edit run folder the viewer uses (None where the run lacks them)."""

    folder: Path
    source_ply: Path | None
    edited_ply: Path | None
    views: EditedViews | None


def _images(folder: Path, kind: str) -> torch.Tensor:
    from rl3dedit.views import load_image

    paths = sorted((folder / "views" / kind).glob("*.png")) or sorted((folder / "views").glob(f"{kind}_*.png"))
    return torch.stack([load_image(p) for p in paths]) if paths else torch.empty(0, 3, 1, 1)


def read_edit_run(folder: str | Path) -> EditRun:
    """The scenes, view cameras and view images of an edit run folder."""
    from rl3dedit.scene import read_cameras_json

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such edit run folder")
    camera_file = next((folder / name for name in CAMERA_FILES if (folder / name).is_file()), None)
    views = None
    if camera_file is None:
        logger.info("%s has no cameras.json: showing the splats without the edited views' cameras", folder)
    else:
        views = EditedViews(read_cameras_json(camera_file), _images(folder, "source"), _images(folder, "edited"))
    source = next((folder / name for name in SOURCE_PLY_FILES if (folder / name).is_file()), None)
    edited = folder / "edited.ply"
    return EditRun(folder, source, edited if edited.is_file() else None, views)

"""Where a scene comes from, and the one loader every job uses (edit, prepare, eval).

A `SceneSource` is a tagged union (`kind`), the same schema in training manifests (`source:`), evaluation cases files
(`scene:`) and the `--scene/--cameras/--data` CLI flags:

```yaml
{kind: synthetic, num_views: 24, size: 64, seed: 0}     # built in code (rl3dedit.synthetic)
{kind: ply, ply: scene.ply, cameras: cameras.json}       # a trained INRIA .ply and its cameras file
{kind: capture, path: data/face, ply: null}              # a nerfstudio/COLMAP folder; no ply = fit a base 3DGS
```

`load_scene_source` returns the scene on the device, all its cameras and the capture's render path. A capture
without a `ply` gets a base 3DGS fitted (`recon.fit`); with a `cache_dir` the fit is written to
`<cache_dir>/<capture>-<hash>/base.ply` and reused by every later load with the same fit settings.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Union

import torch
from pydantic import BaseModel, ConfigDict, Field

from rl3dedit.scene import Cameras, GaussianScene

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig
    from rl3dedit.scene import Capture

logger = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticSource(_Strict):
    """`rl3dedit.synthetic.make_synthetic_capture(num_views, size, seed)`: a small scene built in code."""

    kind: Literal["synthetic"] = "synthetic"
    num_views: int = Field(24, ge=2)
    size: int = Field(64, ge=16)
    seed: int = 0


class PlySource(_Strict):
    """A trained INRIA-format 3DGS `.ply` and the cameras file it was trained with."""

    kind: Literal["ply"] = "ply"
    ply: str
    cameras: str
    """INRIA cameras.json, nerfstudio transforms.json or a COLMAP model."""


class CaptureSource(_Strict):
    """A capture folder (nerfstudio or COLMAP); a base 3DGS is fitted from it unless `ply` is given."""

    kind: Literal["capture"] = "capture"
    path: str
    ply: str | None = None


SceneSource = Annotated[Union[SyntheticSource, PlySource, CaptureSource], Field(discriminator="kind")]


def scene_source_from_flags(*, scene: str | Path | None = None, cameras: str | Path | None = None,
                            data: str | Path | None = None) -> SyntheticSource | PlySource | CaptureSource:
    """The source named by the CLI flags: `--data CAPTURE [--scene PLY]` or `--scene PLY --cameras FILE`."""
    if data is not None:
        if cameras is not None:
            raise ValueError("--cameras goes with --scene, not with --data (a capture holds its own cameras)")
        return CaptureSource(path=str(data), ply=None if scene is None else str(scene))
    if scene is None or cameras is None:
        raise ValueError("give a scene and its cameras: --scene PLY --cameras FILE, or --data CAPTURE")
    return PlySource(ply=str(scene), cameras=str(cameras))


def describe_source(source: SyntheticSource | PlySource | CaptureSource) -> str:
    """A one-line description recorded in outputs."""
    if isinstance(source, SyntheticSource):
        return f"synthetic(num_views={source.num_views}, size={source.size}, seed={source.seed})"
    if isinstance(source, PlySource):
        return f"ply {source.ply} with cameras {source.cameras}"
    return f"capture {source.path}" + (f" with {source.ply}" if source.ply else "")


@dataclass
class LoadedScene:
    """A scene ready for a job.

    Fields:
        scene: the 3DGS on the requested device; None when only cameras were asked for.
        cameras: all cameras of the scene (w2c OpenCV viewmats, pixel Ks), on the device.
        render_path: the capture's render path (nerfstudio camera_paths), or None.
        description: what was loaded (recorded in outputs).
        fit_metrics: the base fit's metrics when a fit ran in this call, else empty.
    """

    scene: GaussianScene | None
    cameras: Cameras
    render_path: Cameras | None
    description: str
    fit_metrics: dict = field(default_factory=dict)


def resolve_path(value: str | Path, root: Path | None) -> Path:
    """A source path with `~` and `$VARS` expanded, relative paths made absolute against `root` (default: cwd)."""
    path = Path(os.path.expandvars(str(value))).expanduser()
    if path.is_absolute():
        return path
    return ((root if root is not None else Path.cwd()) / path).resolve()


def base_fit_path(capture_dir: Path, config: RunConfig, cache_dir: Path) -> Path:
    """The cache entry of a capture's base fit: keyed by the folder, downscale, recon settings, seed, background."""
    key = (f"{capture_dir}|{config.scene.downscale}|{config.recon.model_dump_json()}|{config.seed}|"
           f"{tuple(config.render.background)}")
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return cache_dir / f"{capture_dir.name}-{digest}" / "base.ply"


def _fit_base(capture: Capture, capture_dir: Path, config: RunConfig, device: torch.device,
              cache_dir: Path | None) -> tuple[GaussianScene, dict]:
    from rl3dedit import recon
    from rl3dedit.scene import read_ply, write_ply

    path = base_fit_path(capture_dir, config, cache_dir) if cache_dir is not None else None
    if path is not None and path.is_file():
        logger.info("reusing the base 3DGS of %s from %s", capture_dir, path)
        return read_ply(path), {}
    logger.info("no .ply for %s: fitting a base 3DGS (%d iterations)", capture_dir, config.recon.fit_iters)
    result = recon.fit(capture, config.recon, device=str(device), seed=config.seed,
                       background=tuple(config.render.background), render=config.render)
    scene = result.scene.detach()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_ply(scene, path)
    return scene, dict(result.metrics)


def load_scene_source(
    source: SyntheticSource | PlySource | CaptureSource,
    config: RunConfig,
    *,
    device: torch.device | str = "cpu",
    root: Path | None = None,
    cache_dir: Path | None = None,
    cameras_only: bool = False,
    where: str = "scene",
    missing_hint: str = "",
) -> LoadedScene:
    """Load `source` (relative paths against `root`); a capture without a ply is fitted (cached under `cache_dir`).

    `config` supplies scene.downscale, recon (base fit), seed and render.background. With `cameras_only`, no `.ply`
    is read and nothing is fitted (`scene` is None). Missing files raise FileNotFoundError naming `where`, the field
    and the path, followed by `missing_hint`.
    """
    from rl3dedit import scene as scene_io
    from rl3dedit.synthetic import make_synthetic_capture

    device = torch.device(device)
    hint = f"; {missing_hint}" if missing_hint else ""

    def existing(value: str, what: str) -> Path:
        path = resolve_path(value, root)
        if not path.exists():
            raise FileNotFoundError(f"{where}: {what} {path} does not exist{hint}")
        return path

    if isinstance(source, SyntheticSource):
        scene, capture = make_synthetic_capture(source.num_views, source.size, source.seed,
                                                background=tuple(config.render.background),
                                                backend=config.render.backend)
        return LoadedScene(None if cameras_only else scene.to(device), capture.cameras.to(device), None,
                           describe_source(source))
    if isinstance(source, PlySource):
        ply, cams = existing(source.ply, "scene.ply"), existing(source.cameras, "scene.cameras")
        scene = None if cameras_only else scene_io.read_ply(ply).to(device)
        return LoadedScene(scene, scene_io.load_cameras(cams).to(device), None, f"ply {ply}")
    if isinstance(source, CaptureSource):
        capture_dir = resolve_path(source.path, root)
        if not capture_dir.is_dir():
            raise FileNotFoundError(f"{where}: capture folder {capture_dir} does not exist{hint}")
        from rl3dedit.capture import is_unposed_folder, pose_folder

        if is_unposed_folder(capture_dir):  # bare photos: pose them first (`rl3dedit capture`, cached)
            capture_dir = pose_folder(capture_dir, cache_dir=None if cache_dir is None else cache_dir / "captures")
        capture = scene_io.load_capture(capture_dir, downscale=config.scene.downscale)
        cameras = capture.cameras.to(device)
        render_path = capture.render_path
        if cameras_only:
            return LoadedScene(None, cameras, render_path, f"capture {capture_dir}")
        if source.ply is not None:
            ply = existing(source.ply, "scene.ply")
            return LoadedScene(scene_io.read_ply(ply).to(device), cameras, render_path,
                               f"capture {capture_dir} with {ply}")
        scene, metrics = _fit_base(capture, capture_dir, config, device, cache_dir)
        return LoadedScene(scene.to(device), cameras, render_path,
                           f"capture {capture_dir} (base 3DGS fitted, {config.recon.fit_iters} iterations)", metrics)
    raise TypeError(f"{where}: unsupported scene source {type(source).__name__}")

"""The source scene and cameras of an evaluation case, loaded once per scene and cached for later cases.

A capture without a trained `.ply` gets a base 3DGS fitted once (`recon.fit`) and written to
`<eval out>/scenes/<key>/base.ply`, so the cases of one scene, and a resumed evaluation, share it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rl3dedit.eval.cases import CaptureScene, CaseSet, EvalCase, PlyScene, SyntheticScene
from rl3dedit.scene import Cameras, GaussianScene

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

logger = logging.getLogger(__name__)


@dataclass
class CaseScene:
    """A case's unedited scene.

    Fields:
        scene: the source 3DGS (on the evaluation device); None when only the cameras were asked for.
        cameras: all cameras of the scene (the editor picks its M views among them).
        render_path: the capture's render path, or None.
        description: what was loaded (recorded in results).
    """

    scene: GaussianScene | None
    cameras: Cameras
    render_path: Cameras | None
    description: str


def _base_fit_path(capture_dir: Path, config: RunConfig, cache_dir: Path) -> Path:
    key = f"{capture_dir}|{config.scene.downscale}|{config.recon.model_dump_json()}|{config.seed}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return cache_dir / f"{capture_dir.name}-{digest}" / "base.ply"


def _fit_capture(capture, capture_dir: Path, config: RunConfig, cache_dir: Path, device: torch.device) -> GaussianScene:
    from rl3dedit.recon import fit
    from rl3dedit.scene import read_ply, write_ply

    path = _base_fit_path(capture_dir, config, cache_dir)
    if path.is_file():
        logger.info("reusing the base 3DGS of %s from %s", capture_dir, path)
        return read_ply(path)
    logger.info("fitting a base 3DGS for %s (%d iterations), cached at %s", capture_dir, config.recon.fit_iters, path)
    scene = fit(capture, config.recon, device=str(device), seed=config.seed).scene.detach()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.ply")
    write_ply(scene, tmp)
    tmp.replace(path)
    return scene


def load_case_scene(
    case: EvalCase, cases: CaseSet, config: RunConfig, *, cache_dir: Path, device: torch.device,
    cameras_only: bool = False,
) -> CaseScene:
    """Load (or fit once and cache) the source scene of `case`; errors name the case and the missing file.

    With `cameras_only`, a `.ply` is not read and no base 3DGS is fitted (`scene` is None).
    """
    from rl3dedit.scene import load_cameras, load_capture, read_ply
    from rl3dedit.synthetic import make_synthetic_capture

    spec = case.scene
    if isinstance(spec, SyntheticScene):
        scene, capture = make_synthetic_capture(num_views=spec.num_views, size=spec.size, seed=spec.seed)
        description = f"synthetic(num_views={spec.num_views}, size={spec.size}, seed={spec.seed})"
        return CaseScene(scene.to(device), capture.cameras.to(device), capture.render_path, description)
    if isinstance(spec, PlyScene):
        ply, cams = cases.resolve(spec.ply), cases.resolve(spec.cameras)
        for path, what in ((ply, "ply"), (cams, "cameras")):
            if not path.exists():
                raise FileNotFoundError(
                    f"case {case.id!r}: scene.{what} {path} does not exist (data root {cases.data_root})"
                )
        scene = None if cameras_only else read_ply(ply).to(device)
        return CaseScene(scene, load_cameras(cams).to(device), None, f"ply {ply}")
    if isinstance(spec, CaptureScene):
        capture_dir = cases.resolve(spec.path)
        if not capture_dir.is_dir():
            raise FileNotFoundError(
                f"case {case.id!r}: capture folder {capture_dir} does not exist; pass --data-root or set "
                f"RL3DEDIT_DATA_ROOT (data root now {cases.data_root})"
            )
        capture = load_capture(capture_dir, downscale=config.scene.downscale)
        if cameras_only:
            return CaseScene(None, capture.cameras.to(device), capture.render_path, f"capture {capture_dir}")
        if spec.ply is not None:
            ply = cases.resolve(spec.ply)
            if not ply.is_file():
                raise FileNotFoundError(f"case {case.id!r}: scene.ply {ply} does not exist")
            scene, description = read_ply(ply), f"capture {capture_dir} with {ply}"
        else:
            scene = _fit_capture(capture, capture_dir, config, cache_dir, device)
            description = f"capture {capture_dir} (base 3DGS fitted, {config.recon.fit_iters} iterations)"
        return CaseScene(scene.to(device), capture.cameras.to(device), capture.render_path, description)
    raise TypeError(f"case {case.id!r}: unsupported scene kind {type(spec).__name__}")

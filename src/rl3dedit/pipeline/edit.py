"""The single-pass edit job: scene -> 9 views -> one grid edit -> split -> verify -> refit -> renders.

Stages (each timed, in this order): `load` (the editor, then the scene: `pipeline.source.load_scene_source`),
`select` and `render` (`pipeline.view_set`: the same view set `prepare` and `eval` use), `edit` (tile, edit,
split), `verify` (VGGT consistency of source and edited views, when a verifier is available), `refit` (warm-started
3DGS fit to the edited views), `turntable`, `write`. Every output goes to a temporary folder renamed into place at
the end (`pipeline.outputs.atomic_run_dir`).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rl3dedit.config import RunConfig, dump_config, resolve_device
from rl3dedit.files import write_json
from rl3dedit.pipeline.outputs import atomic_run_dir
from rl3dedit.pipeline.source import LoadedScene, SceneSource, load_scene_source
from rl3dedit.pipeline.view_set import plan_view_set, render_size, render_view_set
from rl3dedit.provenance import provenance
from rl3dedit.render import render_images
from rl3dedit.scene import Cameras, GaussianScene

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""progress(stage_name, stage_index, num_stages), called when a stage starts."""

STAGES = ("load", "select", "render", "edit", "verify", "refit", "turntable", "write")


@dataclass
class EditReport:
    """What an edit run produced (files are in `out_dir`).

    Fields:
        out_dir: the finished run folder.
        source_scene / edited_scene: the 3DGS before and after the refit.
        view_indices: indices (into the input cameras) of the M edited views, in grid (row-major) order.
        view_cameras: (M) cameras of the edited views at the rendered view size.
        source_views / edited_views: (M, 3, H, W) in [0, 1].
        metrics: consistency scores, refit quality, memory (also in metrics.json).
        timings: seconds per stage.
    """

    out_dir: Path
    source_scene: GaussianScene
    edited_scene: GaussianScene
    view_indices: list[int]
    view_cameras: Cameras
    source_views: torch.Tensor
    edited_views: torch.Tensor
    metrics: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak on GPU, process max RSS on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_kb / 1024 if sys.platform != "darwin" else rss_kb / 2**20


class _StageClock:
    """Wall time per stage; progress reported as each stage starts."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._progress is not None:
            self._progress(name, STAGES.index(name), len(STAGES))
        logger.info("stage %s", name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start


def _load_scene(config: RunConfig, source: SceneSource | None, scene: GaussianScene | None,
                cameras: Cameras | None, device: torch.device) -> LoadedScene:
    """The scene from `source`, or the given `scene` + `cameras` objects (exactly one of the two)."""
    if source is not None:
        if scene is not None or cameras is not None:
            raise ValueError("give either a scene source or scene + cameras objects, not both")
        loaded = load_scene_source(source, config, device=device)
        assert loaded.scene is not None  # a full load always has a scene
        return loaded
    if scene is None or cameras is None:
        raise ValueError("give a scene and its cameras: --scene PLY --cameras FILE, or --data CAPTURE")
    return LoadedScene(scene.to(device), cameras.to(device), None, "given scene")


def _consistency(views: torch.Tensor, cameras: Cameras, verifier) -> dict[str, float]:
    """VGGT consistency terms for one view set (V, 3, H, W): mean confidences and relative-pose agreement."""
    breakdown = verifier.score(views[None], cameras)
    scores = {name: float(value[0]) for name, value in breakdown.terms.items()}
    scores["total"] = float(breakdown.total[0])
    return scores


def _build_verifier(config: RunConfig, device: torch.device):
    """The consistency scorer, or None with a logged reason when the verifier weights are unavailable."""
    from rl3dedit.rewards import build_reward

    try:
        return build_reward("consistency", config, device=device), None
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        logger.warning("consistency not scored: verifier unavailable (%s)", exc)
        return None, str(exc)


def write_video(frames: torch.Tensor, path: Path, fps: int = 12) -> None:
    """Write (F, 3, H, W) frames in [0, 1] as an H.264 mp4 (imageio-ffmpeg)."""
    import imageio.v2 as imageio

    array = (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1, ffmpeg_log_level="error") as writer:
        for frame in array:
            writer.append_data(frame)


def run_edit(
    config: RunConfig,
    *,
    instruction: str,
    out_dir: Path,
    source: SceneSource | None = None,
    scene: GaussianScene | None = None,
    cameras: Cameras | None = None,
    turntable_frames: int = 36,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> EditReport:
    """Edit a 3DGS scene with one text instruction and refit it; write every output into `out_dir`.

    Inputs: a `source` (`pipeline.source`: synthetic, .ply + cameras, or a capture folder, fitted first unless it
    names a ply; `scene_source_from_flags` builds one from the CLI flags), or `scene` + `cameras` objects.
    """
    from rl3dedit.editor import KontextGridEditor
    from rl3dedit.recon import refit
    from rl3dedit.scene import write_ply
    from rl3dedit.views import make_comparison_sheet, save_image, turntable_path

    if not instruction.strip():
        raise ValueError("the instruction is empty")
    device = resolve_device(config.device)
    vc = config.views
    if vc.rows * vc.cols != vc.num_views:
        raise ValueError(f"views.rows x views.cols = {vc.rows}x{vc.cols} does not hold views.num_views = {vc.num_views}")
    clock = _StageClock(progress)
    background = tuple(config.render.background)
    with atomic_run_dir(Path(out_dir), overwrite=overwrite) as tmp:
        with clock.stage("load"):
            # The editor loads first so that missing weights fail before any long fit or render.
            editor = KontextGridEditor.from_config(config, device)
            loaded = _load_scene(config, source, scene, cameras, device)
            source_scene, all_cameras, render_path = loaded.scene, loaded.cameras, loaded.render_path
            fit_metrics = loaded.fit_metrics
        with clock.stage("select"):
            view_set = plan_view_set(all_cameras, vc)
        with clock.stage("render"):
            view_set = render_view_set(source_scene, view_set, config.render)
            view_indices, view_cameras, source_views = view_set.indices, view_set.cameras, view_set.images
            width, height = view_cameras.width, view_cameras.height
        with clock.stage("edit"):
            edit = editor.edit_views(
                source_views, instruction, num_steps=config.editor.num_steps,
                guidance=config.editor.guidance_scale, seed=config.editor.seed,
            )
            edited_views = edit.views.to(device=device, dtype=source_views.dtype).clamp(0, 1)
            del editor
        with clock.stage("verify"):
            verifier, verifier_error = _build_verifier(config, device)
            if verifier is not None:
                consistency = {
                    "source": _consistency(source_views, view_cameras, verifier),
                    "edited": _consistency(edited_views, view_cameras, verifier),
                }
            else:
                consistency = {"not_computed": verifier_error}
            del verifier
        with clock.stage("refit"):
            refit_result = refit(
                source_scene, view_cameras, edited_views, config.recon, device=str(device), seed=config.seed,
                background=background,
            )
            edited_scene = refit_result.scene.detach()
        with clock.stage("turntable"):
            path = render_path if render_path is not None else turntable_path(all_cameras, turntable_frames)
            if len(path) > turntable_frames:
                path = path[torch.linspace(0, len(path) - 1, turntable_frames).round().long().tolist()]
            path = path.rescaled(*render_size(path, vc.view_size, 2)).to(device)
            frames = torch.cat([
                render_images(source_scene, path, background, backend=config.render.backend),
                render_images(edited_scene, path, background, backend=config.render.backend),
            ], dim=3)
        with clock.stage("write"):
            views_dir = tmp / "views"
            views_dir.mkdir()
            for i, (src, dst) in enumerate(zip(source_views, edited_views)):
                save_image(src, views_dir / f"source_{i:02d}.png")
                save_image(dst, views_dir / f"edited_{i:02d}.png")
            save_image(edit.source_grid, tmp / "grid_source.png")
            save_image(edit.grid, tmp / "grid_edited.png")
            save_image(make_comparison_sheet([source_views, edited_views], ["source", "edited"]), tmp / "before_after.png")
            write_ply(edited_scene, tmp / "edited.ply")
            write_video(frames, tmp / "turntable.mp4")
            dump_config(config, tmp / "config.yaml")
            (tmp / "instruction.txt").write_text(instruction + "\n")
        metrics = {
            "instruction": instruction,
            "prompt": edit.prompt,
            "seed": edit.seed,
            "view_indices": [int(i) for i in view_indices],
            "view_size": [width, height],
            "consistency": consistency,
            "refit": {k: v for k, v in refit_result.metrics.items() if isinstance(v, (int, float, str))},
            "base_fit": {k: v for k, v in fit_metrics.items() if isinstance(v, (int, float, str))},
            "timings_s": dict(clock.timings),
            "total_s": sum(clock.timings.values()),
            "peak_memory_mb": peak_memory_mb(device),
            "device": str(device),
            "provenance": provenance(),
        }
        write_json(tmp / "metrics.json", metrics)
    return EditReport(
        out_dir=Path(out_dir).expanduser().resolve(), source_scene=source_scene, edited_scene=edited_scene,
        view_indices=[int(i) for i in view_indices], view_cameras=view_cameras, source_views=source_views,
        edited_views=edited_views, metrics=metrics, timings=dict(clock.timings),
    )


"""The single-pass edit job: scene -> 9 views -> one grid edit -> split -> verify -> refit -> renders.

Stages (each timed, in this order): `load` (checks that the editor's weights resolve, then loads the scene:
`pipeline.source.load_scene_source`; named `fit` when a capture without a .ply gets its base 3DGS fitted),
`select` and `render` (`pipeline.view_set`: the same view set `prepare` and `eval` use), `edit` (load the editor, tile,
edit, split, free the editor; more than rows x cols views are edited in anchored grids along the camera path, `views.plan_grids`), `verify` (VGGT consistency of source and edited views, when a verifier is available), `refit` (warm-started
3DGS fit to the edited views), `turntable`, `write`. Every output goes to a temporary folder renamed into place at
the end (`pipeline.outputs.atomic_run_dir`).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rl3dedit.config import RunConfig, dump_config, random_model_names, resolve_device
from rl3dedit.files import write_json
from rl3dedit.pipeline.candidates import run_best_of_n, write_candidates
from rl3dedit.pipeline.outputs import atomic_run_dir
from rl3dedit.pipeline.source import CaptureSource, LoadedScene, SceneSource, load_scene_source, resolve_path
from rl3dedit.pipeline.view_set import plan_view_set, render_size, render_view_set
from rl3dedit.progress import Progress
from rl3dedit.provenance import provenance
from rl3dedit.render import render_images
from rl3dedit.scene import Cameras, GaussianScene

logger = logging.getLogger(__name__)


STAGES = ("load", "fit", "select", "render", "edit", "verify", "refit", "turntable", "write")


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

    def __init__(self, progress: Progress | None) -> None:
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
                cameras: Cameras | None, device: torch.device, cache_dir: Path | None = None) -> LoadedScene:
    """The scene from `source`, or the given `scene` + `cameras` objects (exactly one of the two)."""
    if source is not None:
        if scene is not None or cameras is not None:
            raise ValueError("give either a scene source or scene + cameras objects, not both")
        loaded = load_scene_source(source, config, device=device, cache_dir=cache_dir)
        assert loaded.scene is not None  # a full load always has a scene
        return loaded
    if scene is None or cameras is None:
        raise ValueError("give a scene and its cameras: --scene PLY --cameras FILE, or --data CAPTURE")
    return LoadedScene(scene.to(device), cameras.to(device), None, "given scene")


def _input_paths(source: SceneSource | None) -> dict[str, str | int]:
    """The run's inputs with absolute paths (metrics.json), so a run says what it was made from."""
    if source is None:
        return {"kind": "objects"}
    data = source.model_dump()
    for key in ("ply", "cameras", "path"):
        if isinstance(data.get(key), str):
            data[key] = str(resolve_path(data[key], None))
    return data


def _consistency(views: torch.Tensor, cameras: Cameras, verifier) -> dict[str, float]:
    """VGGT consistency terms for one view set (V, 3, H, W): mean confidences and relative-pose agreement."""
    breakdown = verifier.score(views[None], cameras)
    scores = {name: float(value[0]) for name, value in breakdown.terms.items()}
    scores["total"] = float(breakdown.total[0])
    return scores


def _build_verifier(config: RunConfig, device: torch.device, scene: GaussianScene):
    """The configured view-set reward (`rewards.view_reward`; warp takes the source scene's rendered depth), or None
    with a logged reason when it cannot be built (e.g. VGGT weights unavailable)."""
    from rl3dedit.rewards import build_reward

    try:
        return build_reward(config.rewards.view_reward, config, device=device, scene=scene), None
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        logger.warning("consistency not scored: verifier unavailable (%s)", exc)
        return None, str(exc)


def _build_best_of_n_reward(config: RunConfig, device: torch.device, scene: GaussianScene):
    """The reward best-of-N selects with; unlike the QA stage, selection cannot go on without it."""
    reward, error = _build_verifier(config, device, scene)
    if reward is None:
        raise ValueError(f"editor.candidates = {config.editor.candidates} needs rewards.view_reward = "
                         f"{config.rewards.view_reward!r} to score the candidates, but it is unavailable: {error}. "
                         "Choose a reward that needs no weights (--set rewards.view_reward=warp or sfm) or pass "
                         "the verifier weights.")
    return reward


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
    progress: Progress | None = None,
    fit_cache: Path | None = None,
) -> EditReport:
    """Edit a 3DGS scene with one text instruction and refit it; write every output into `out_dir`.

    Inputs: a `source` (`pipeline.source`: synthetic, .ply + cameras, or a capture folder, fitted first unless it
    names a ply; `scene_source_from_flags` builds one from the CLI flags), or `scene` + `cameras` objects.
    `fit_cache`: a folder where a capture's base fit is kept and found again, keyed by the capture and the fit
    settings (`pipeline.source.base_fit_path`), so a second edit of the same capture does not refit it.
    """
    from rl3dedit.editor import KontextGridEditor, edit_prompt, edit_seed
    from rl3dedit.editor.components import check_editor_sources, release_pipeline
    from rl3dedit.recon import refit
    from rl3dedit.scene import write_cameras_json, write_ply
    from rl3dedit.views import edit_in_grids, make_comparison_sheet, plan_grids, save_image, turntable_path

    if not instruction.strip():
        raise ValueError("the instruction is empty")
    device = resolve_device(config.device)
    vc = config.views
    clock = _StageClock(progress)
    background = tuple(config.render.background)
    with atomic_run_dir(Path(out_dir), overwrite=overwrite) as tmp:
        # A capture without a .ply is fitted first: its own stage, so the stage table shows what took the time.
        fits = isinstance(source, CaptureSource) and source.ply is None
        with clock.stage("fit" if fits else "load"):
            # Missing editor weights fail before any long fit or render; the editor itself loads after the base
            # fit (in "edit"), so its ~31 GiB (bf16, no offload) are not resident during the fit.
            check_editor_sources(config.editor)
            loaded = _load_scene(config, source, scene, cameras, device, fit_cache)
            source_scene, all_cameras, render_path = loaded.scene, loaded.cameras, loaded.render_path
            fit_metrics = loaded.fit_metrics
        with clock.stage("select"):
            view_set = plan_view_set(all_cameras, vc)
        with clock.stage("render"):
            view_set = render_view_set(source_scene, view_set, config.render)
            view_indices, view_cameras, source_views = view_set.indices, view_set.cameras, view_set.images
            width, height = view_cameras.width, view_cameras.height
        with clock.stage("edit"):
            editor = KontextGridEditor.from_config(config, device)
            ec = config.editor
            # More views than one grid: anchored grids along the path (views.plan_grids); one grid otherwise.
            grids = plan_grids(len(source_views), vc.rows, vc.cols, vc.anchor_cells)
            base_seed = edit_seed(ec.seed, instruction, ec.seed_mode)
            prompt = edit_prompt(instruction, ec.prompt_mode, vc.rows, vc.cols)
            runs: dict[int, list] = {}  # seed -> the grid edits of that candidate

            def edit_all(seeds: list[int]) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
                if len(grids) == 1:  # one grid: the seeds share the transformer's batch
                    results = editor.edit_views_seeds(source_views, prompt, num_steps=ec.num_steps,
                                                      guidance_scale=ec.guidance_scale, seeds=seeds, rewrite=False)
                    runs.update({s: [r] for s, r in zip(seeds, results)})
                    return [(r.views.to(device=device, dtype=source_views.dtype).clamp(0, 1), [r.grid])
                            for r in results]
                out = []
                for candidate_seed in seeds:  # anchored grids depend on earlier grids: one candidate at a time
                    runs[candidate_seed] = edits = []

                    def edit_grid(grid_views: torch.Tensor, _index: int) -> torch.Tensor:
                        edits.append(editor.edit_views(grid_views, prompt, num_steps=ec.num_steps,
                                                       guidance_scale=ec.guidance_scale, seed=candidate_seed,
                                                       rewrite=False))
                        return edits[-1].views.to(device=device, dtype=source_views.dtype)

                    out.append((edit_in_grids(source_views, grids, edit_grid).clamp(0, 1), [e.grid for e in edits]))
                return out

            selection = verifier = None
            if ec.candidates > 1:
                verifier = _build_best_of_n_reward(config, device, source_scene)
                selection = run_best_of_n(
                    config, edit_all, base_seed, view_cameras, verifier, source_views=source_views, device=device,
                    single_view_edit=lambda view: editor.sample(
                        view, instruction, num_steps=ec.num_steps, guidance_scale=ec.guidance_scale, seed=base_seed,
                    ).images[0].to(view),
                )
                edited_views = selection.kept.views
            else:
                edited_views = edit_all([base_seed])[0][0]
            edits = runs[selection.kept.seed if selection is not None else base_seed]
            edit = edits[0]
            release_pipeline(editor.pipe)  # del alone leaves the transformer in a reference cycle
            editor = None  # not del: the grid closures above name it
        with clock.stage("verify"):
            verifier, verifier_error = (verifier, None) if verifier is not None else _build_verifier(
                config, device, source_scene)
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
                background=background, render=config.render,
            )
            edited_scene = refit_result.scene.detach()
        with clock.stage("turntable"):
            path = render_path if render_path is not None else turntable_path(all_cameras, turntable_frames)
            if len(path) > turntable_frames:
                path = path[torch.linspace(0, len(path) - 1, turntable_frames).round().long().tolist()]
            path = path.rescaled(*render_size(path, vc.view_size, 2)).to(device)
            rc = config.render
            frames = torch.cat([
                render_images(source_scene, path, background, backend=rc.backend, chunk_size=rc.chunk_size),
                render_images(edited_scene, path, background, backend=rc.backend, chunk_size=rc.chunk_size),
            ], dim=3)
        with clock.stage("write"):
            # Source and edited views in separate folders, with the cameras of exactly these views (at their size),
            # so `rl3dedit score OUT` and `render --cameras OUT/cameras.json` take the run as it is.
            for kind, images in (("source", source_views), ("edited", edited_views)):
                (tmp / "views" / kind).mkdir(parents=True)
                for i, image in enumerate(images):
                    save_image(image, tmp / "views" / kind / f"{i:02d}.png")
            write_cameras_json(view_cameras.to("cpu"), tmp / "cameras.json")
            if fits:  # keep the base fit: `edit --scene OUT/base/scene.ply --cameras OUT/base/cameras.json` reuses it
                (tmp / "base").mkdir()
                write_ply(source_scene, tmp / "base" / "scene.ply")
                write_cameras_json(all_cameras.to("cpu"), tmp / "base" / "cameras.json")
            save_image(edit.source_grid, tmp / "grid_source.png")
            save_image(edit.grid, tmp / "grid_edited.png")
            for g, later in enumerate(edits[1:], start=1):
                save_image(later.source_grid, tmp / f"grid_source_{g:02d}.png")
                save_image(later.grid, tmp / f"grid_edited_{g:02d}.png")
            save_image(make_comparison_sheet([source_views, edited_views], ["source", "edited"]), tmp / "before_after.png")
            if selection is not None:
                write_candidates(selection, tmp / "candidates")
            write_ply(edited_scene, tmp / "edited.ply")
            write_video(frames, tmp / "turntable.mp4")
            dump_config(config, tmp / "config.yaml")
            (tmp / "instruction.txt").write_text(instruction + "\n")
        metrics = {
            "instruction": instruction,
            "prompt": edit.prompt,
            "edit_seed": edit.seed,
            "run_seed": config.seed,
            "inputs": _input_paths(source),
            "random_models": random_model_names(config, ("editor", "verifier")
                                                if config.rewards.view_reward == "consistency" else ("editor",)),
            "view_indices": [int(i) for i in view_indices],
            "grids": [{"views": list(slot.indices), "anchored": list(slot.anchored)} for slot in grids],
            "view_size": [width, height],
            "consistency": consistency,
            **({"candidates": selection.to_json()} if selection is not None else {}),
            "refit": {k: v for k, v in refit_result.metrics.items() if isinstance(v, (int, float, str))},
            "base_fit": {k: v for k, v in fit_metrics.items() if isinstance(v, (int, float, str))},
            "base_fit_reused": bool(fits and not fit_metrics),
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


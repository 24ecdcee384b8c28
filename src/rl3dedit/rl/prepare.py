"""Offline preparation of a training manifest: render every view set, precompute the anchor references.

For each scene: load it (synthetic / .ply + cameras / capture), resolve its view sets (explicit indices or
`select_views` on deterministic camera subsets), render each set's source views at the preset's view size; for
each (view set, prompt) sample, edit every view alone with the base editor (the paper's offline single-view
Kontext edits Ĩ_m, paper.md §4.2 step 1; an ODE run of `KontextGridEditor.sample` with the bare instruction).

Layout of the output folder (`PreparedDataset` reads it):
    index.json                              finished samples and view sets (rewritten atomically after each item)
    view_sets/<scene>-vNNN/source_XX.png    the V source views, grid (row-major) order
    view_sets/<scene>-vNNN/cameras.json     their cameras (w2c OpenCV viewmats, pixel Ks, size) and capture indices
    samples/<id>/anchor_XX.png              the V single-view edits of that sample's prompt
    samples/<id>/meta.json                  prompt, seeds, view set
Each item is written into a temporary folder and renamed, then the index is updated, so an interrupted run leaves
only whole items; rerunning skips them (resumable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rl3dedit.files import atomic_dir, atomic_path
from rl3dedit.render import render_images
from rl3dedit.rl.data import Manifest, SampleSpec, SceneEntry, sample_specs
from rl3dedit.rl.seeding import derive_seed
from rl3dedit.scene import Cameras, GaussianScene

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
INDEX_VERSION = 1
ProgressCallback = Callable[[str, int, int], None]
"""progress(item_id, items_done, items_total); items_total is -1 while scenes are still being loaded."""


@dataclass
class PrepareReport:
    """out_dir: the prepared folder; num_samples / num_view_sets: totals; skipped: items already present."""

    out_dir: Path
    num_samples: int
    num_view_sets: int
    skipped: int


def _write_json(path: Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def _read_index(out_dir: Path) -> dict:
    path = out_dir / INDEX_NAME
    if not path.is_file():
        return {"version": INDEX_VERSION, "view_sets": {}, "samples": {}, "order": [], "complete": False}
    index = json.loads(path.read_text())
    if index.get("version") != INDEX_VERSION:
        raise ValueError(f"{path}: index version {index.get('version')} is not {INDEX_VERSION}; prepare a new folder")
    return index


def _atomic_item(final: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp_dir)` and rename the folder to `final` (replacing a stale partial one)."""
    with atomic_dir(final) as tmp:
        write(tmp)


def cameras_to_json(cameras: Cameras) -> dict:
    return {"viewmats": cameras.viewmats.detach().cpu().double().tolist(),
            "Ks": cameras.Ks.detach().cpu().double().tolist(), "width": cameras.width, "height": cameras.height}


def cameras_from_json(data: dict) -> Cameras:
    return Cameras(viewmats=torch.tensor(data["viewmats"], dtype=torch.float32),
                   Ks=torch.tensor(data["Ks"], dtype=torch.float32), width=int(data["width"]),
                   height=int(data["height"]))


def view_size_for(cameras: Cameras, view_size: int, align: int = 16) -> tuple[int, int]:
    """(width, height): longer side `view_size`, aspect kept, both multiples of `align` (one FLUX token = 16 px)."""
    scale = view_size / max(cameras.width, cameras.height)
    width = max(align, int(round(cameras.width * scale / align)) * align)
    height = max(align, int(round(cameras.height * scale / align)) * align)
    return width, height


def load_scene(entry: SceneEntry, manifest: Manifest, config: RunConfig, device: torch.device
               ) -> tuple[GaussianScene, Cameras]:
    """The entry's Gaussian scene and all its cameras (fits a base 3DGS for a capture without `ply`)."""
    from rl3dedit.scene import load_cameras, load_capture, read_ply
    from rl3dedit.synthetic import make_synthetic_capture

    if entry.synthetic is not None:
        spec = entry.synthetic
        scene, capture = make_synthetic_capture(spec.num_views, spec.size, spec.seed,
                                                background=tuple(config.render.background))
        return scene.to(device), capture.cameras.to(device)
    if entry.capture is not None:
        capture = load_capture(manifest.path(entry.capture), downscale=config.scene.downscale)
        if entry.ply is not None:
            return read_ply(manifest.path(entry.ply)).to(device), capture.cameras.to(device)
        from rl3dedit.recon import fit

        logger.info("scene %s has no ply: fitting a base 3DGS (%d iterations)", entry.name, config.recon.fit_iters)
        return fit(capture, config.recon, device=str(device), seed=config.seed).scene.to(device), capture.cameras.to(device)
    assert entry.ply is not None and entry.cameras is not None  # guaranteed by SceneEntry validation
    return read_ply(manifest.path(entry.ply)).to(device), load_cameras(manifest.path(entry.cameras)).to(device)


def resolve_view_sets(entry: SceneEntry, cameras: Cameras, num_views: int) -> list[list[int]]:
    """Explicit sets (checked against the camera count and V), or `auto: N` sets: set j runs `select_views` on a
    subset keeping a seeded 3/4 of the cameras (set 0 on all of them), so sets differ but stay spread out."""
    from rl3dedit.views import select_views

    total = len(cameras)
    if isinstance(entry.view_sets, list):
        for i, views in enumerate(entry.view_sets):
            if len(views) != num_views or max(views) >= total:
                raise ValueError(f"scene {entry.name}: view_sets[{i}] = {views} must hold {num_views} indices "
                                 f"below the scene's {total} cameras")
        return [list(v) for v in entry.view_sets]
    sets: list[list[int]] = []
    for j in range(entry.view_sets.auto):
        if j == 0:
            subset = list(range(total))
        else:
            generator = torch.Generator().manual_seed(derive_seed("view-set", entry.name, j))
            keep = max(num_views, (3 * total) // 4)
            subset = sorted(torch.randperm(total, generator=generator)[:keep].tolist())
        picked = select_views(cameras[subset], num_views)
        sets.append([subset[i] for i in picked])
    return sets


def prepare_dataset(config: RunConfig, manifest: Manifest, out_dir: str | Path, *, editor=None,
                    device: torch.device | str = "cpu", progress: ProgressCallback | None = None) -> PrepareReport:
    """Prepare every sample of `manifest` into `out_dir` (resumable; see the module docstring).

    `editor`: a `KontextGridEditor` for the anchor edits (built from `config.editor` when None). Anchor edits use
    `rl.prepare_num_steps` (default `editor.num_steps`) ODE steps, `editor.guidance_scale`, and the seed
    derive_seed(editor.seed, sample id, view).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    index = _read_index(out_dir)
    steps = config.rl.prepare_num_steps or config.editor.num_steps
    skipped = sum(1 for v in index["view_sets"].values() if v["scene"] in {e.name for e in manifest.scenes})
    done = 0
    specs_all: list[SampleSpec] = []
    for entry in manifest.scenes:
        view_sets = _render_view_sets(entry, manifest, config, index, out_dir, device)
        specs = sample_specs(Manifest(scenes=[entry], root=manifest.root), {entry.name: len(view_sets)})
        specs_all.extend(specs)
        for spec in specs:
            if spec.id in index["samples"] and (out_dir / "samples" / spec.id).is_dir():
                skipped += 1
                done += 1
                continue
            editor = editor if editor is not None else _build_editor(config, device)
            _prepare_sample(spec, out_dir, editor, config, steps)
            index["samples"][spec.id] = {"scene": spec.scene, "view_set": spec.view_set_id, "prompt": spec.prompt,
                                         "prompt_index": spec.prompt_index}
            _write_json(out_dir / INDEX_NAME, index)
            done += 1
            if progress is not None:
                progress(spec.id, done, -1)
    index["order"] = [s.id for s in specs_all]
    index["complete"] = True
    _write_json(out_dir / INDEX_NAME, index)
    logger.info("prepared %d samples (%d view sets) in %s; %d items were already there", len(specs_all),
                len(index["view_sets"]), out_dir, skipped)
    return PrepareReport(out_dir, len(specs_all), len(index["view_sets"]), skipped)


def _render_view_sets(entry: SceneEntry, manifest: Manifest, config: RunConfig, index: dict, out_dir: Path,
                      device: torch.device) -> list[list[int]]:
    """The scene's view sets, rendering (and indexing) those not yet prepared. A scene whose view sets are all
    prepared is not loaded again (a capture without `ply` would otherwise be re-fitted on every resume)."""
    from rl3dedit.views import save_image

    expected = len(entry.view_sets) if isinstance(entry.view_sets, list) else entry.view_sets.auto
    prepared = {k: v for k, v in index["view_sets"].items()
                if v["scene"] == entry.name and (out_dir / "view_sets" / k).is_dir()}
    if len(prepared) == expected:
        return [prepared[f"{entry.name}-v{i:03d}"]["indices"] for i in range(expected)]
    scene, cameras = load_scene(entry, manifest, config, device)
    view_sets = resolve_view_sets(entry, cameras, config.views.num_views)
    width, height = view_size_for(cameras, config.views.view_size)
    for set_index, indices in enumerate(view_sets):
        set_id = f"{entry.name}-v{set_index:03d}"
        if set_id in prepared:
            continue
        view_cameras = cameras[indices].rescaled(width, height)
        views = render_images(scene, view_cameras, tuple(config.render.background)).float().cpu()

        def write_set(tmp: Path, views=views, view_cameras=view_cameras, indices=indices) -> None:
            for v, image in enumerate(views):
                save_image(image, tmp / f"source_{v:02d}.png")
            _write_json(tmp / "cameras.json", {**cameras_to_json(view_cameras.to("cpu")), "indices": indices})

        _atomic_item(out_dir / "view_sets" / set_id, write_set)
        index["view_sets"][set_id] = {"scene": entry.name, "indices": indices}
        _write_json(out_dir / INDEX_NAME, index)
    return view_sets


def base_editor_config(config: RunConfig):
    """`config.editor` as the training base: no LoRA, transformer weights from `rl.base_transformer_file` (None =
    the model's own), so training and anchor edits start from base Kontext even when the preset edits with the
    released RL3DEdit weights."""
    return config.editor.model_copy(update={"lora": None, "transformer_file": config.rl.base_transformer_file})


def _build_editor(config: RunConfig, device: torch.device):
    from rl3dedit.editor import KontextGridEditor, load_pipeline

    # the anchors are the base model's single-view edits (paper.md §4.2), not the fine-tuned editor's
    pipe = load_pipeline(base_editor_config(config), device)
    return KontextGridEditor(pipe, rows=config.views.rows, cols=config.views.cols, layout=config.views.layout,
                             max_sequence_length=config.editor.max_sequence_length)


def _prepare_sample(spec: SampleSpec, out_dir: Path, editor, config: RunConfig, steps: int) -> None:
    """Edit each source view of the sample's view set alone with the bare instruction (paper.md §4.2 step 1)."""
    from rl3dedit.views import load_image, save_image

    set_dir = out_dir / "view_sets" / spec.view_set_id
    sources = sorted(set_dir.glob("source_*.png"))
    seeds = [derive_seed(config.editor.seed, spec.id, v) for v in range(len(sources))]

    def write(tmp: Path) -> None:
        for v, (path, seed) in enumerate(zip(sources, seeds)):
            view = load_image(path)
            edit = editor.sample(view, spec.prompt, num_steps=steps, guidance=config.editor.guidance_scale, seed=seed)
            save_image(edit.images[0].clamp(0, 1).cpu(), tmp / f"anchor_{v:02d}.png")
        _write_json(tmp / "meta.json", {"prompt": spec.prompt, "view_set": spec.view_set_id, "seeds": seeds,
                                        "num_steps": steps, "guidance": config.editor.guidance_scale})

    _atomic_item(out_dir / "samples" / spec.id, write)

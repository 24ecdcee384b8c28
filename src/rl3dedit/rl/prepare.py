"""Offline preparation of a training manifest: render every view set, precompute the anchor references.

For each scene: load it (`pipeline.load_scene_source`), resolve its view sets (explicit indices or `select_views`
on deterministic camera subsets), render each set with `pipeline.prepare_view_set` (the size and renderer the edit
job uses, so training views match the views edited at inference); for
each (view set, prompt) sample, edit every view alone with the base editor (the paper's offline single-view
Kontext edits Ĩ_m of the anchor protocol, paper Sec. 3.3; an ODE run of `KontextGridEditor.sample` with the bare instruction).

Layout of the output folder (`PreparedDataset` reads it):
    index.json                              finished samples and view sets (rewritten atomically after each item)
    view_sets/<scene>-vNNN/source_XX.png    the V source views, grid (row-major) order
    view_sets/<scene>-vNNN/cameras.json     their cameras (INRIA cameras.json; `id` = the camera's capture index)
    samples/<id>/anchor_XX.png              the V single-view edits of that sample's prompt
    samples/<id>/meta.json                  prompt, seeds, view set
Each item is written into a temporary folder and renamed, then the index is updated, so an interrupted run leaves
only whole items; rerunning skips them (resumable). Every indexed item stores a content `key` (a hash of what it was
made from: the scene entry, view-set spec and render settings; for a sample also its prompt and the anchor editor
settings), and an item is reused only when its key still matches: a changed prompt or setting is re-prepared, never
silently reused. The folder is refused when it was not written by rl3dedit (`files.claimed_dir`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rl3dedit.errors import InputError
from rl3dedit.files import atomic_dir, claimed_dir, dumps_json, read_json, write_json
from rl3dedit.pipeline.source import load_scene_source
from rl3dedit.pipeline.view_set import prepare_view_set
from rl3dedit.progress import Progress
from rl3dedit.rl.data import Manifest, SampleSpec, SceneEntry, sample_specs
from rl3dedit.rl.seeding import derive_seed
from rl3dedit.scene import Cameras, GaussianScene, write_cameras_json

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
INDEX_VERSION = 2
"""2: view-set cameras are INRIA cameras.json (`scene.write_cameras_json`); 1 had its own viewmats/Ks layout."""


@dataclass
class PrepareReport:
    """out_dir: the prepared folder; num_samples / num_view_sets: totals; skipped: items already present."""

    out_dir: Path
    num_samples: int
    num_view_sets: int
    skipped: int


def _read_index(out_dir: Path) -> dict:
    path = out_dir / INDEX_NAME
    if not path.is_file():
        return {"version": INDEX_VERSION, "view_sets": {}, "samples": {}, "order": [], "complete": False}
    index = read_json(path, "prepared data index")
    if index.get("version") != INDEX_VERSION:
        raise ValueError(f"{path}: index version {index.get('version')} is not {INDEX_VERSION}; prepare a new folder")
    return index


def _content_key(*parts: object) -> str:
    return hashlib.sha256(dumps_json(parts, sort_keys=True).encode()).hexdigest()[:16]


def _view_set_key(entry: SceneEntry, manifest: Manifest, config: RunConfig, set_index: int) -> str:
    """What a view set's images depend on: the scene (and how a capture without ply is fitted), the view-set spec,
    the view and render settings (not `chunk_size`, which changes no pixel)."""
    return _content_key(entry.model_dump(mode="json", exclude={"prompts"}), str(manifest.root), set_index,
                        config.views.model_dump(mode="json"), config.render.model_dump(mode="json", exclude={"chunk_size"}),
                        config.scene.model_dump(mode="json"), config.recon.model_dump(mode="json"), config.seed)


def _sample_key(set_key: str, spec: SampleSpec, config: RunConfig, steps: int) -> str:
    """What a sample's anchors depend on: its view set, prompt, and the base editor's settings and step count."""
    return _content_key(set_key, spec.prompt, spec.id, base_editor_config(config).model_dump(mode="json"), steps)


def _atomic_item(final: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp_dir)` and rename the folder to `final` (replacing a stale partial one)."""
    with atomic_dir(final) as tmp:
        write(tmp)


def load_scene(entry: SceneEntry, manifest: Manifest, config: RunConfig, device: torch.device,
               cache_dir: Path | None = None) -> tuple[GaussianScene, Cameras]:
    """The entry's Gaussian scene and all its cameras (a capture without `ply` gets a base 3DGS fitted, cached in
    `cache_dir` when given)."""
    loaded = load_scene_source(entry.source, config, device=device, root=manifest.root, cache_dir=cache_dir,
                               where=f"scene {entry.name!r}")
    assert loaded.scene is not None  # a full load always has a scene
    return loaded.scene, loaded.cameras


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
                    device: torch.device | str = "cpu", progress: Progress | None = None) -> PrepareReport:
    """Prepare every sample of `manifest` into `out_dir` (resumable; see the module docstring).

    `editor`: a `KontextGridEditor` for the anchor edits (built from `config.editor` when None). Anchor edits use
    `rl.prepare_num_steps` (default `editor.num_steps`) ODE steps, `editor.guidance_scale`, and the seed
    derive_seed(editor.seed, sample id, view).
    """
    out_dir = Path(out_dir)
    with claimed_dir(out_dir, "prepared data", keep_on_error=lambda folder: (folder / INDEX_NAME).is_file()):
        return _prepare(config, manifest, out_dir, editor=editor, device=device, progress=progress)


def _prepare(config: RunConfig, manifest: Manifest, out_dir: Path, *, editor, device: torch.device | str,
             progress: Progress | None) -> PrepareReport:
    device = torch.device(device)
    index = _read_index(out_dir)
    steps = config.rl.prepare_num_steps or config.editor.num_steps
    skipped = 0
    done = 0
    specs_all: list[SampleSpec] = []
    for entry in manifest.scenes:
        view_sets, reused = _render_view_sets(entry, manifest, config, index, out_dir, device)
        skipped += reused
        specs = sample_specs(Manifest(scenes=[entry], root=manifest.root), {entry.name: len(view_sets)})
        specs_all.extend(specs)
        for spec in specs:
            key = _sample_key(index["view_sets"][spec.view_set_id]["key"], spec, config, steps)
            if index["samples"].get(spec.id, {}).get("key") == key and (out_dir / "samples" / spec.id).is_dir():
                skipped += 1
                done += 1
                continue
            editor = editor if editor is not None else _build_editor(config, device)
            _prepare_sample(spec, out_dir, editor, config, steps)
            index["samples"][spec.id] = {"scene": spec.scene, "view_set": spec.view_set_id, "prompt": spec.prompt,
                                         "prompt_index": spec.prompt_index, "key": key}
            write_json(out_dir / INDEX_NAME, index)
            done += 1
            if progress is not None:
                progress(spec.id, done, -1)
    index["order"] = [s.id for s in specs_all]
    index["complete"] = True
    write_json(out_dir / INDEX_NAME, index)
    logger.info("prepared %d samples (%d view sets) in %s; %d items were already there", len(specs_all),
                len(index["view_sets"]), out_dir, skipped)
    return PrepareReport(out_dir, len(specs_all), len(index["view_sets"]), skipped)


def _render_view_sets(entry: SceneEntry, manifest: Manifest, config: RunConfig, index: dict, out_dir: Path,
                      device: torch.device) -> tuple[list[list[int]], int]:
    """The scene's view sets and how many were reused, rendering (and indexing) those not yet prepared or whose
    content key changed. A scene whose view sets are all prepared is not loaded again (a capture without `ply`
    would otherwise be re-fitted on every resume)."""
    from rl3dedit.views import save_image

    expected = len(entry.view_sets) if isinstance(entry.view_sets, list) else entry.view_sets.auto
    keys = {f"{entry.name}-v{i:03d}": _view_set_key(entry, manifest, config, i) for i in range(expected)}
    prepared = {k: v for k, v in index["view_sets"].items()
                if k in keys and v.get("key") == keys[k] and (out_dir / "view_sets" / k).is_dir()}
    if len(prepared) == expected:
        return [prepared[f"{entry.name}-v{i:03d}"]["indices"] for i in range(expected)], expected
    scene, cameras = load_scene(entry, manifest, config, device, cache_dir=out_dir / "scenes")
    try:
        view_sets = resolve_view_sets(entry, cameras, config.views.num_views)
    except ValueError as exc:  # a view set that does not fit the scene: name the manifest that asked for it
        raise InputError(f"{manifest.source}: {exc}") from None
    for set_index, indices in enumerate(view_sets):
        set_id = f"{entry.name}-v{set_index:03d}"
        if set_id in prepared:
            continue
        view_set = prepare_view_set(scene, cameras, config.views, config.render, indices=indices)
        view_cameras, views = view_set.cameras, view_set.images.float().cpu()

        def write_set(tmp: Path, views=views, view_cameras=view_cameras, indices=indices) -> None:
            for v, image in enumerate(views):
                save_image(image, tmp / f"source_{v:02d}.png")
            write_cameras_json(view_cameras.to("cpu"), tmp / "cameras.json", ids=indices)

        _atomic_item(out_dir / "view_sets" / set_id, write_set)
        index["view_sets"][set_id] = {"scene": entry.name, "indices": indices, "key": keys[set_id]}
        write_json(out_dir / INDEX_NAME, index)
    return view_sets, len(prepared)


def base_editor_config(config: RunConfig):
    """`config.editor` as the training base: no LoRA, transformer weights from `rl.base_transformer_file` (None =
    the model's own), so training and anchor edits start from base Kontext even when the preset edits with the
    released RL3DEdit weights."""
    return config.editor.model_copy(update={"lora": None, "transformer_file": config.rl.base_transformer_file})


def _build_editor(config: RunConfig, device: torch.device):
    from rl3dedit.editor import KontextGridEditor

    # the anchors are the base model's single-view edits (paper Sec. 3.3), not the fine-tuned editor's
    return KontextGridEditor.from_config(config, device, editor=base_editor_config(config))


def _prepare_sample(spec: SampleSpec, out_dir: Path, editor, config: RunConfig, steps: int) -> None:
    """Edit each source view of the sample's view set alone with the bare instruction (paper Sec. 3.3)."""
    from rl3dedit.views import load_image, save_image

    set_dir = out_dir / "view_sets" / spec.view_set_id
    sources = sorted(set_dir.glob("source_*.png"))
    seeds = [derive_seed(config.editor.seed, spec.id, v) for v in range(len(sources))]

    def write(tmp: Path) -> None:
        for v, (path, seed) in enumerate(zip(sources, seeds)):
            view = load_image(path)
            edit = editor.sample(view, spec.prompt, num_steps=steps, guidance_scale=config.editor.guidance_scale,
                                 seed=seed)
            save_image(edit.images[0].clamp(0, 1).cpu(), tmp / f"anchor_{v:02d}.png")
        write_json(tmp / "meta.json", {"prompt": spec.prompt, "view_set": spec.view_set_id, "seeds": seeds,
                                        "num_steps": steps, "guidance": config.editor.guidance_scale})

    _atomic_item(out_dir / "samples" / spec.id, write)

"""Evaluation cases: what to edit, how to describe it, and which novel cameras to score it from.

A cases file is YAML data validated here (pydantic). Each case names a scene (a `pipeline.source.SceneSource`: a
synthetic scene, an INRIA `.ply` with its cameras, or a capture folder), an instruction, the source and target captions CLIP-dir needs, the paper's
split label (the paper's test set: `in_distribution`, `unseen_instruction`, `new_scene`) and the evaluation cameras,
which must be novel views: never one of the M views the editor saw (the paper's evaluation protocol, docs/references.md §1).

Relative paths in `scene` resolve against the data root, chosen in this order: the `data_root` argument
(`rl3dedit eval --data-root`), the environment variable `RL3DEDIT_DATA_ROOT`, the file's own `data_root` field
(relative to the cases file), the cases file's folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rl3dedit.files import read_yaml
from rl3dedit.pipeline.source import SceneSource, resolve_path
from rl3dedit.scene import Cameras

logger = logging.getLogger(__name__)

DATA_ROOT_ENV = "RL3DEDIT_DATA_ROOT"
Split = Literal["in_distribution", "unseen_instruction", "new_scene"]
SPLITS: tuple[str, ...] = ("in_distribution", "unseen_instruction", "new_scene")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexViews(_Strict):
    """Explicit camera indices (into the scene's cameras); none may be one of the edited views."""

    kind: Literal["indices"]
    indices: list[int] = Field(min_length=1)


class HeldOutViews(_Strict):
    """Every `every`-th camera among those the editor did not see (in camera order), at most `max_views`."""

    kind: Literal["held_out"]
    every: int = Field(1, ge=1)
    max_views: int | None = Field(None, ge=1)


class RenderPathViews(_Strict):
    """The capture's render path (`camera_paths/*.json`), subsampled evenly to `num_views` frames."""

    kind: Literal["render_path"]
    num_views: int = Field(9, ge=1)


class OrbitViews(_Strict):
    """A smooth path through the scene's cameras (`views.turntable_path`), for scenes without a render path."""

    kind: Literal["orbit"]
    num_views: int = Field(9, ge=1)


EvalViewsSpec = Annotated[
    Union[IndexViews, HeldOutViews, RenderPathViews, OrbitViews], Field(discriminator="kind")
]


class OracleSpec(_Strict):
    """A known 3D edit instead of the editor (`eval.oracle`): its renders of the M views are the edited views, and
    every other camera of the scene has ground truth, so the refit is scored exactly."""

    kind: Literal["recolour", "remove", "add", "global"]
    region_fraction: float = Field(0.25, gt=0.0, le=1.0)
    """Radius of the edited central sphere as a fraction of the scene extent (recolour, remove, add)."""


class EvalCase(_Strict):
    """One (scene, instruction) pair of the benchmark."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=120)
    """Unique, file-name safe (it names the case's output folder)."""
    split: Split
    scene: SceneSource
    instruction: str = Field(min_length=1)
    source_caption: str = Field(min_length=1)
    """Describes the unedited scene (CLIP-dir)."""
    target_caption: str = Field(min_length=1)
    """Describes the scene after the edit (CLIP-T and CLIP-dir)."""
    eval_views: EvalViewsSpec = HeldOutViews(kind="held_out")
    oracle: OracleSpec | None = None
    """Set: an oracle case (no editor; `oracle_*` metrics against the oracle's ground truth)."""


@dataclass(frozen=True)
class CaseSet:
    """A validated cases file.

    Fields:
        path: the cases file.
        name: its `name` field (or the file stem).
        data_root: folder that relative scene paths resolve against.
        cases: the cases in file order.
    """

    path: Path
    name: str
    data_root: Path
    cases: list[EvalCase]

    def resolve(self, relative: str) -> Path:
        """A scene path from the cases file, made absolute against `data_root`."""
        return resolve_path(relative, self.data_root)


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(entry)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def _choose_data_root(path: Path, file_root: str | None, data_root: Path | None) -> Path:
    if data_root is not None:
        return Path(data_root).expanduser().resolve()
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser().resolve()
    if file_root:
        root = Path(os.path.expandvars(file_root)).expanduser()
        return root if root.is_absolute() else (path.parent / root).resolve()
    return path.parent.resolve()


def load_cases(path: Path, *, data_root: Path | None = None) -> CaseSet:
    """Read and validate a cases file; every error names the file, the case (index and id) and the field."""
    path = Path(path)
    data = read_yaml(path, "cases file")
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        found = type(data).__name__ if not isinstance(data, dict) else f"keys {sorted(data)}"
        raise ValueError(f"{path}: expected a mapping with a `cases:` list, found {found}")
    unknown = set(data) - {"name", "description", "data_root", "cases"}
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level keys {sorted(unknown)} (allowed: name, description, data_root, cases)"
        )
    if not data["cases"]:
        raise ValueError(f"{path}: `cases:` is empty")
    cases, problems, seen = [], [], {}
    for index, raw in enumerate(data["cases"]):
        label = f"cases[{index}]"
        if isinstance(raw, dict) and "id" in raw:
            label += f" (id {raw['id']!r})"
        try:
            case = EvalCase.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"{label}:\n{_format_errors(exc)}")
            continue
        if case.id in seen:
            problems.append(f"{label}: duplicate id, already used by cases[{seen[case.id]}]")
        seen.setdefault(case.id, index)
        cases.append(case)
    if problems:
        raise ValueError(f"{path}: invalid cases:\n" + "\n".join(problems))
    root = _choose_data_root(path, data.get("data_root"), data_root)
    logger.info("%s: %d cases, scene paths relative to %s", path, len(cases), root)
    return CaseSet(path=path.resolve(), name=str(data.get("name") or path.stem), data_root=root, cases=cases)


@dataclass
class EvalCameras:
    """The novel cameras a case is scored from.

    Fields:
        cameras: (E) cameras, full resolution of the scene's cameras or render path.
        indices: for `indices` / `held_out`, the camera indices used; None for paths.
        source: a short description (`held_out every 2`, `render_path`, ...), recorded in results.
    """

    cameras: Cameras
    indices: list[int] | None
    source: str


def _evenly(count: int, total: int) -> list[int]:
    """`count` indices spread evenly over range(total), first and last included."""
    if count >= total:
        return list(range(total))
    if count == 1:
        return [0]
    return [round(i * (total - 1) / (count - 1)) for i in range(count)]


def resolve_eval_cameras(
    case: EvalCase,
    cameras: Cameras,
    *,
    edited_indices: list[int],
    render_path: Cameras | None = None,
) -> EvalCameras:
    """Evaluation cameras of `case`, given the scene's cameras and the indices of the M edited views.

    Raises ValueError naming the case when the spec cannot be met (an index out of range or among the edited views,
    no held-out camera left, no render path in a scene without one).
    """
    spec = case.eval_views
    edited = set(int(i) for i in edited_indices)
    where = f"case {case.id!r}: eval_views"
    if isinstance(spec, IndexViews):
        bad = [i for i in spec.indices if not 0 <= i < len(cameras)]
        if bad:
            raise ValueError(f"{where}: indices {bad} out of range for {len(cameras)} cameras")
        seen = [i for i in spec.indices if i in edited]
        if seen:
            raise ValueError(
                f"{where}: indices {seen} are edited views {sorted(edited)}, not novel views; choose others"
            )
        return EvalCameras(cameras[list(spec.indices)], list(spec.indices), f"indices {list(spec.indices)}")
    if isinstance(spec, HeldOutViews):
        held_out = [i for i in range(len(cameras)) if i not in edited][:: spec.every]
        if spec.max_views is not None:
            held_out = [held_out[i] for i in _evenly(spec.max_views, len(held_out))]
        if not held_out:
            raise ValueError(f"{where}: all {len(cameras)} cameras are edited views; no held-out camera is left")
        return EvalCameras(cameras[held_out], held_out, f"held_out every {spec.every}")
    if isinstance(spec, RenderPathViews):
        if render_path is None or len(render_path) == 0:
            raise ValueError(
                f"{where}: kind render_path needs a capture with camera_paths/*.json; use held_out or orbit"
            )
        picks = _evenly(spec.num_views, len(render_path))
        return EvalCameras(render_path[picks], None, f"render_path ({len(picks)} of {len(render_path)} frames)")
    if isinstance(spec, OrbitViews):
        from rl3dedit.views import turntable_path

        return EvalCameras(turntable_path(cameras, spec.num_views), None, f"orbit ({spec.num_views} frames)")
    raise TypeError(f"{where}: unsupported spec {type(spec).__name__}")


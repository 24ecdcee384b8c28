"""The training manifest: scenes, their editing prompts and view sets; every (view set, prompt) pair is a sample.

The paper's training data: 8 scenes, 70 prompts, 18-23 view sets of 9 views per scene, 1,319 samples = (view set, prompt)
pairs. A manifest is YAML, validated on load; errors name the entry (`scenes[2].prompts[0]: empty`).

```yaml
scenes:
  - name: synth                 # unique, used in sample ids
    source: {kind: synthetic, num_views: 24, size: 64, seed: 0}   # a `pipeline.source.SceneSource`
    prompts: ["Turn the object red", "Make it look like marble"]
    view_sets: {auto: 2}        # or explicit camera indices: [[0, 3, 6, ...], [1, 4, 7, ...]]
  - name: face
    # nerfstudio / COLMAP folder; relative paths start at the manifest's folder. `ply` is optional (without it a
    # base 3DGS is fitted first).
    source: {kind: capture, path: ../../data/face, ply: ../../data/face/scene.ply}
    prompts: [...]
    view_sets: {auto: 20}
```

The flat form of the first manifests (`synthetic: {...}`, `capture:` [+ `ply:`], or `ply:` + `cameras:` directly
on the entry) is still read and converted to `source`.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rl3dedit.files import read_yaml
from rl3dedit.pipeline.source import SceneSource

_FLAT_SOURCE_KEYS = ("synthetic", "ply", "cameras", "capture")


class AutoViewSets(BaseModel):
    """`auto: N`: N view sets chosen by `rl3dedit.views.select_views` on N deterministic camera subsets."""

    model_config = ConfigDict(extra="forbid")
    auto: int = Field(ge=1)


class SceneEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source: SceneSource
    prompts: list[str]
    view_sets: AutoViewSets | list[list[int]]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "/\\ "):
            raise ValueError(f"must be a non-empty name without spaces or slashes, found {value!r}")
        return value

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one prompt")
        for i, prompt in enumerate(value):
            if not prompt.strip():
                raise ValueError(f"prompts[{i}]: empty")
        return [p.strip() for p in value]

    @field_validator("view_sets")
    @classmethod
    def _view_sets(cls, value: AutoViewSets | list[list[int]]) -> AutoViewSets | list[list[int]]:
        if isinstance(value, list):
            if not value:
                raise ValueError("needs at least one view set")
            for i, views in enumerate(value):
                if len(views) < 2 or len(set(views)) != len(views) or min(views) < 0:
                    raise ValueError(f"view_sets[{i}]: expected distinct camera indices >= 0 (at least 2), "
                                     f"found {views}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _flat_source(cls, data: object) -> object:
        """The first manifests' flat keys (`synthetic` / `capture` [+ `ply`] / `ply` + `cameras`) as `source`."""
        if not isinstance(data, dict) or not any(data.get(k) is not None for k in _FLAT_SOURCE_KEYS):
            if isinstance(data, dict) and "source" not in data:
                raise ValueError("give exactly one scene source: `source: {kind: synthetic | ply | capture, ...}`; "
                                 "found none")
            return {k: v for k, v in data.items() if k not in _FLAT_SOURCE_KEYS} if isinstance(data, dict) else data
        flat = {k: data.get(k) for k in _FLAT_SOURCE_KEYS}
        rest = {k: v for k, v in data.items() if k not in _FLAT_SOURCE_KEYS}
        if "source" in data:
            raise ValueError(f"give `source` or the flat keys {list(_FLAT_SOURCE_KEYS)}, not both")
        if flat["synthetic"] is not None:
            if flat["ply"] or flat["cameras"] or flat["capture"]:
                raise ValueError("a `synthetic` scene takes no `ply`, `cameras` or `capture`")
            synthetic = flat["synthetic"]
            return {**rest, "source": {"kind": "synthetic", **(synthetic if isinstance(synthetic, dict) else {})}}
        if flat["capture"] is not None:
            if flat["cameras"] is not None:
                raise ValueError("a `capture` holds its own cameras; drop `cameras`")
            return {**rest, "source": {"kind": "capture", "path": flat["capture"], "ply": flat["ply"]}}
        if flat["cameras"] is None:
            raise ValueError("`ply` without `capture` needs `cameras` (cameras.json, transforms.json or COLMAP)")
        if flat["ply"] is None:
            raise ValueError("give exactly one scene source: `cameras` needs a `ply`")
        return {**rest, "source": {"kind": "ply", "ply": flat["ply"], "cameras": flat["cameras"]}}


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenes: list[SceneEntry]
    root: Path = Path(".")
    """Folder relative paths resolve against (the manifest file's folder; set by `load_manifest`)."""
    source: str = "<manifest>"
    """Where the manifest came from (its file), for errors found after parsing; set by `parse_manifest`."""

    @model_validator(mode="after")
    def _unique(self) -> "Manifest":
        if not self.scenes:
            raise ValueError("scenes: needs at least one scene")
        names = [s.name for s in self.scenes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenes: duplicate names {dupes}")
        return self

    def path(self, value: str) -> Path:
        """A manifest path resolved against `root`."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.root / path)

    @property
    def num_prompts(self) -> int:
        return sum(len(s.prompts) for s in self.scenes)


@dataclass(frozen=True)
class SampleSpec:
    """One training sample before rendering: a (view set, prompt) pair of one scene.

    `view_set` indexes the scene's view sets; `prompt_index` its prompts. `id` is stable and file-name safe.
    """

    scene: str
    view_set: int
    prompt_index: int
    prompt: str

    @property
    def id(self) -> str:
        return f"{self.scene}-v{self.view_set:03d}-p{self.prompt_index:03d}"

    @property
    def view_set_id(self) -> str:
        return f"{self.scene}-v{self.view_set:03d}"


def _location(loc: tuple) -> str:
    """pydantic's ('scenes', 2, 'prompts', 0) as `scenes[2].prompts[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("list[list[int]]", "AutoViewSets", "synthetic", "ply", "capture") and out.endswith("source"):
            continue
        elif part in ("list[list[int]]", "AutoViewSets") or "function-" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_manifest(data: object, source: str = "<manifest>", root: Path = Path(".")) -> Manifest:
    """Validate a manifest mapping; errors read `source: scenes[2].prompts[0]: empty`, one per line."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping with a `scenes` list, found {type(data).__name__}")
    try:
        return Manifest.model_validate({**data, "root": root, "source": source})
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{_location(error['loc'])}: {message}")
        raise ValueError(f"{source}: invalid manifest:\n  " + "\n  ".join(dict.fromkeys(lines))) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest YAML; relative paths inside resolve against its folder."""
    path = Path(path).expanduser()
    data = read_yaml(path, "manifest")
    return parse_manifest(data, str(path), path.resolve().parent)


def builtin_manifest_path() -> Path:
    """The packaged synthetic manifest used when a run names none (`configs/manifests/tiny.yaml`)."""
    return Path(str(importlib.resources.files("rl3dedit") / "configs" / "manifests" / "tiny.yaml"))


def sample_specs(manifest: Manifest, view_set_counts: dict[str, int]) -> list[SampleSpec]:
    """Every (view set, prompt) pair in manifest order; `view_set_counts[scene]` = that scene's view sets."""
    specs = []
    for scene in manifest.scenes:
        for view_set in range(view_set_counts[scene.name]):
            for p, prompt in enumerate(scene.prompts):
                specs.append(SampleSpec(scene.name, view_set, p, prompt))
    return specs

"""The run configuration: one section per package, loaded from a YAML preset and validated once.

A preset (`configs/tiny.yaml`, `configs/paper.yaml`) is a complete instance; the code never branches on its name.
Command-line overrides touch single fields through `override("section.field", value)`.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from rl3dedit.editor.config import EditorConfig
from rl3dedit.eval.config import EvalConfig
from rl3dedit.files import read_yaml, write_text
from rl3dedit.geometry.config import VerifierConfig
from rl3dedit.recon.config import ReconConfig
from rl3dedit.render.config import RenderConfig
from rl3dedit.rewards.config import RewardsConfig
from rl3dedit.rl.config import RLConfig
from rl3dedit.scene.config import SceneConfig
from rl3dedit.views.config import ViewsConfig


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    """Human-readable preset name (recorded in outputs only)."""
    description: str = ""
    seed: int = 0
    """Run seed; every generator is derived from it."""
    device: str = "auto"
    """`auto` (CUDA when available, else CPU), `cpu` or `cuda[:N]`."""
    scene: SceneConfig = SceneConfig()
    views: ViewsConfig = ViewsConfig()
    render: RenderConfig = RenderConfig()
    recon: ReconConfig = ReconConfig()
    editor: EditorConfig = EditorConfig()
    verifier: VerifierConfig = VerifierConfig()
    rewards: RewardsConfig = RewardsConfig()
    rl: RLConfig = RLConfig()
    eval: EvalConfig = EvalConfig()

    def override(self, dotted: str, value: Any) -> "RunConfig":
        """A validated copy with one field replaced, e.g. `override("editor.num_steps", 4)`."""
        data = self.model_dump()
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            if key not in node or not isinstance(node[key], dict):
                raise KeyError(f"no config section {key!r} in {dotted!r}")
            node = node[key]
        if leaf not in node:
            raise KeyError(f"no config field {dotted!r}")
        node[leaf] = value
        return RunConfig.model_validate(data)


MODEL_ROLES: dict[str, tuple[str, str, str]] = {
    "editor": ("FLUX.1-Kontext editor", "editor.model", "--editor-model"),
    "transformer_file": ("editor transformer weights", "editor.transformer_file", "--transformer-file"),
    "lora": ("editor LoRA", "editor.lora", "--lora"),
    "verifier": ("VGGT verifier", "verifier.model", "--verifier-model"),
    "clip": ("CLIP for CLIP-T / CLIP-dir", "eval.clip_model", "--clip-model"),
    "lpips": ("LPIPS weights (anchor reward)", "rewards.lpips_weights", "--set rewards.lpips_weights="),
}
"""The models a run may load: role -> (what it is, config key, the flag commands use for it)."""


def random_model_names(config: RunConfig, roles: tuple[str, ...]) -> list[str]:
    """The models among `roles` that `config` builds with random weights (`tiny`); every number they produce checks
    the pipeline only. No file or hub access."""
    names = []
    for role in roles:
        what, key, _ = MODEL_ROLES[role]
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value == "tiny" or (role == "lpips" and value is None and config.rewards.allow_random_lpips):
            names.append(what)
    return names


PRESETS = ("tiny", "paper")


def preset_path(name: str) -> Path:
    """Path of a packaged preset YAML (`tiny`, `paper`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} or pass a YAML file")
    return Path(str(importlib.resources.files("rl3dedit") / "configs" / f"{name}.yaml"))


def load_config(preset_or_path: str | Path) -> RunConfig:
    """Load a preset by name or a YAML file path; errors name the file and the failing fields."""
    path = Path(preset_or_path)
    if not path.suffix and not path.exists():
        path = preset_path(str(preset_or_path))
    data = read_yaml(path, f"config (or one of the presets {', '.join(PRESETS)})")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config sections, found {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid config:\n{exc}") from exc


def resolve_device(name: str):
    """The torch device for a `device` setting: `auto` is CUDA when available, else CPU. A name torch does not know,
    or a CUDA device this machine does not have, raises `rl3dedit.errors.InputError` saying what to pass."""
    import torch

    from rl3dedit.errors import InputError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: CUDA is not available here (torch {torch.__version__}); use --device "
                             "cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r}: Apple MPS is not available here; use --device cpu or auto")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {name!r}: rl3dedit runs on cpu, cuda or mps")
    return device


def dump_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically (every run folder keeps one)."""
    write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))

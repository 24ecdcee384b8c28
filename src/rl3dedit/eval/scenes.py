"""The source scene and cameras of an evaluation case (`pipeline.load_scene_source`, relative to the data root).

A capture without a trained `.ply` gets a base 3DGS fitted once and cached under `<eval out>/scenes/`, so the cases
of one scene, and a resumed evaluation, share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rl3dedit.eval.cases import CaseSet, EvalCase
from rl3dedit.pipeline.source import LoadedScene, load_scene_source

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig


def load_case_scene(
    case: EvalCase, cases: CaseSet, config: RunConfig, *, cache_dir: Path, device: torch.device,
    cameras_only: bool = False,
) -> LoadedScene:
    """Load (or fit once and cache) the source scene of `case`; errors name the case and the missing file.

    With `cameras_only`, a `.ply` is not read and no base 3DGS is fitted (`scene` is None).
    """
    return load_scene_source(
        case.scene, config, device=device, root=cases.data_root, cache_dir=cache_dir, cameras_only=cameras_only,
        where=f"case {case.id!r}",
        missing_hint=f"pass --data-root or set RL3DEDIT_DATA_ROOT; data root now {cases.data_root}",
    )

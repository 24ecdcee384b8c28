"""The `Editor` contract: what the edit pipeline needs from any multi-view 2D editor."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from rl3dedit.editor.rollout import EditResult


@runtime_checkable
class Editor(Protocol):
    """Edits V views jointly from one instruction; seeds make every call reproducible.

    `views`: (V, 3, H, W) in [0, 1], row-major grid order. Returns `EditResult` with views of the same shape.
    A new editor may add keyword arguments but keeps these names.
    """

    def edit_views(self, views: Tensor, instruction: str, *, num_steps: int, guidance: float,
                   seed: int) -> EditResult: ...

"""The editor contracts: `Editor` (what the edit pipeline needs from any multi-view 2D editor) and `TrainableEditor`
(what the GRPO trainer needs on top: SDE rollouts, recomputed log-probs, trainable parameters, train/eval)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from PIL import Image
from torch import Tensor

from rl3dedit.editor.rollout import EditResult, Rollout, StepLogProb


@runtime_checkable
class Editor(Protocol):
    """Edits V views jointly from one instruction; seeds make every call reproducible.

    `views`: (V, 3, H, W) in [0, 1], row-major grid order. Returns `EditResult` with views of the same shape.
    A new editor may add keyword arguments but keeps these names.
    """

    def edit_views(self, views: Tensor, instruction: str, *, num_steps: int, guidance_scale: float,
                   seed: int) -> EditResult: ...


@runtime_checkable
class TrainableEditor(Editor, Protocol):
    """An `Editor` that GRPO can train (`rl.GRPOTrainer` types against this, not against a concrete editor).

    `rollout` samples G members of one condition (no gradient) and records the SDE window; `log_prob` recomputes
    recorded step k for some members with gradients to `named_trainable_parameters()` (`use_reference=True`: the
    frozen base policy, no gradient). With unchanged weights, the same member chunks and the same precision
    context, `log_prob` reproduces `rollout.log_probs` exactly. `save_lora` writes the trainable weights in a form
    the editor loads back (checkpoints and the exported adapter).
    """

    def rollout(self, image: Image.Image | Tensor, prompt: str, *, group_size: int, num_steps: int,
                guidance_scale: float, seeds: list[int], noise_level: float, window: tuple[int, int] | None,
                height: int | None = None, width: int | None = None,
                batch_size: int | None = None) -> Rollout: ...

    def log_prob(self, rollout: Rollout, k: int, *, members: list[int] | None = None,
                 use_reference: bool = False) -> StepLogProb: ...

    def named_trainable_parameters(self) -> dict[str, torch.nn.Parameter]: ...

    def save_lora(self, folder: str | Path) -> Path: ...

    def train(self) -> None: ...

    def eval(self) -> None: ...

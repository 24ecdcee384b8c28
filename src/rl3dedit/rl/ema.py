"""Exponential moving average of the trainable (LoRA) weights, Flow-GRPO style
(Flow-GRPO's code, docs/references.md §3: its EMA of the LoRA weights: decay min((1 + n) / (10 + n), 0.9), every 8 steps).

Settings live in `EMA`; the state (`EMAState`: shadow tensors and update count) is passed explicitly so a run can
checkpoint and replay it. Rollouts always use the raw weights; the EMA weights are swapped in only for
evaluation and export (`swapped_in`).

Devices: the shadow lives on one stated device (`EMAState.device`, the host by default) whatever the parameters
do: with model offload the LoRA parameters sit on the CPU when the EMA is created and on the GPU after each
update, so every blend and swap moves the parameter values to the shadow's device and back explicitly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class EMAState:
    """shadow: one fp32 tensor per parameter (same order), all on `device`; num_updates: EMA updates applied."""

    shadow: list[torch.Tensor]
    num_updates: int = 0

    @property
    def device(self) -> torch.device:
        return self.shadow[0].device if self.shadow else torch.device("cpu")


@dataclass(frozen=True)
class EMA:
    """decay: the cap of the effective decay min((1 + n) / (10 + n), decay); interval: update every `interval`
    optimiser steps (Flow-GRPO: 0.9 and 8)."""

    decay: float = 0.9
    interval: int = 8

    def init(self, params: list[torch.nn.Parameter], device: torch.device | str = "cpu") -> EMAState:
        """A shadow of `params` on `device` (the host by default: it costs no GPU memory, and a blend every
        `interval` steps moves only the LoRA weights)."""
        return EMAState([p.detach().to(device=device, dtype=torch.float32, copy=True) for p in params])

    def update(self, state: EMAState, params: list[torch.nn.Parameter], step: int) -> bool:
        """After optimiser step `step` (0-based): blend when (step + 1) % interval == 0. Returns whether it did."""
        if (step + 1) % self.interval != 0:
            return False
        decay = min((1 + state.num_updates) / (10 + state.num_updates), self.decay)
        with torch.no_grad():
            for shadow, param in zip(state.shadow, params, strict=True):
                shadow.mul_(decay).add_(param.detach().to(shadow.device, torch.float32), alpha=1.0 - decay)
        state.num_updates += 1
        return True


@contextlib.contextmanager
def swapped_in(state: EMAState, params: list[torch.nn.Parameter]) -> Iterator[None]:
    """Inside the block the parameters hold the EMA weights; the raw weights come back afterwards, bit for bit."""
    backup = [p.detach().clone() for p in params]
    with torch.no_grad():
        for shadow, param in zip(state.shadow, params, strict=True):
            param.copy_(shadow)  # copy_ converts device and dtype
    try:
        yield
    finally:
        with torch.no_grad():
            for saved, param in zip(backup, params, strict=True):
                param.copy_(saved)

"""Exponential moving average of the trainable (LoRA) weights, Flow-GRPO style (flow_grpo.md §14).

Settings live in `EMA`; the state (`EMAState`: shadow tensors and update count) is passed explicitly so a run can
checkpoint and replay it. Rollouts always use the raw weights; the EMA weights are swapped in only for
evaluation and export (`swapped_in`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class EMAState:
    """shadow: one fp32 tensor per parameter (same order); num_updates: EMA updates applied so far."""

    shadow: list[torch.Tensor]
    num_updates: int = 0


@dataclass(frozen=True)
class EMA:
    """decay: the cap of the effective decay min((1 + n) / (10 + n), decay); interval: update every `interval`
    optimiser steps (Flow-GRPO: 0.9 and 8)."""

    decay: float = 0.9
    interval: int = 8

    def init(self, params: list[torch.nn.Parameter]) -> EMAState:
        return EMAState([p.detach().float().clone() for p in params])

    def update(self, state: EMAState, params: list[torch.nn.Parameter], step: int) -> bool:
        """After optimiser step `step` (0-based): blend when (step + 1) % interval == 0. Returns whether it did."""
        if (step + 1) % self.interval != 0:
            return False
        decay = min((1 + state.num_updates) / (10 + state.num_updates), self.decay)
        with torch.no_grad():
            for shadow, param in zip(state.shadow, params, strict=True):
                shadow.mul_(decay).add_(param.detach().float(), alpha=1.0 - decay)
        state.num_updates += 1
        return True


@contextlib.contextmanager
def swapped_in(state: EMAState, params: list[torch.nn.Parameter]) -> Iterator[None]:
    """Inside the block the parameters hold the EMA weights; the raw weights come back afterwards, bit for bit."""
    backup = [p.detach().clone() for p in params]
    with torch.no_grad():
        for shadow, param in zip(state.shadow, params, strict=True):
            param.copy_(shadow.to(param.dtype))
    try:
        yield
    finally:
        with torch.no_grad():
            for saved, param in zip(backup, params, strict=True):
                param.copy_(saved)

"""The one progress-callback type of rl3dedit's long-running jobs (edit, prepare, eval, fit, train, capture)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["Progress"]


class Progress(Protocol):
    """`progress(what, done, total, metrics=None)`, called by a job as it advances.

    Args:
        what: the stage, item or case starting (`"refit"`, a sample id, a case id) or the loop's name (`"fit"`).
        done: units finished before this call (a stage index, items done, the optimisation step).
        total: all units, -1 while unknown.
        metrics: optional scalars of an optimisation loop at this step (loss, PSNR, ...).
    """

    def __call__(self, what: str, done: int, total: int, metrics: Mapping[str, float] | None = None, /) -> None: ...

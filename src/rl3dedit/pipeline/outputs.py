"""Run folders that are either complete or absent.

A run writes into a hidden temporary sibling of its output folder and renames it into place only when every file is
written, so an interrupted or failed run never leaves a folder that looks complete. A marker file identifies folders
made by rl3dedit, which are the only existing folders a new run may replace.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from rl3dedit.errors import OutputExistsError
from rl3dedit.files import OWNER_MARKER, atomic_dir, check_writable, is_ours

logger = logging.getLogger(__name__)

RUN_MARKER = OWNER_MARKER

__all__ = ["OutputExistsError", "RUN_MARKER", "atomic_run_dir", "check_output_dir"]


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse an existing output folder unless it is an rl3dedit run folder and `overwrite` is set, and a location
    that cannot be written (checked before a long run, not after it)."""
    out_dir = Path(out_dir).expanduser().absolute()
    check_writable(out_dir)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / RUN_MARKER).exists():
        raise OutputExistsError(f"{out_dir} exists, is not empty and was not written by rl3dedit; choose another --out")
    if not overwrite:
        raise OutputExistsError(f"{out_dir} holds an earlier run; pass --overwrite to replace it")


@contextlib.contextmanager
def atomic_run_dir(out_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes `out_dir` when the block succeeds, and is deleted when it fails."""
    out_dir = Path(out_dir).expanduser().resolve()
    check_output_dir(out_dir, overwrite=overwrite)
    # ownership is checked again at the final rename: a folder that appeared or changed meanwhile is kept
    with atomic_dir(out_dir, replaceable=is_ours) as tmp:
        yield tmp
        (tmp / RUN_MARKER).write_text("written by rl3dedit\n")

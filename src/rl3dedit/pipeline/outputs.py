"""Run folders that are either complete or absent.

A run writes into a hidden temporary sibling of its output folder and renames it into place only when every file is
written, so an interrupted or failed run never leaves a folder that looks complete. A marker file identifies folders
made by rl3dedit, which are the only existing folders a new run may replace.
"""

from __future__ import annotations

from rl3dedit.errors import OutputExistsError
from rl3dedit.files import OWNER_MARKER, atomic_run_dir, check_output_dir

RUN_MARKER = OWNER_MARKER

__all__ = ["OutputExistsError", "RUN_MARKER", "atomic_run_dir", "check_output_dir"]

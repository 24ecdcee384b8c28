"""Orchestration of whole jobs across packages: the single-pass edit and its run folders."""

from rl3dedit.pipeline.edit import STAGES, EditReport, run_edit, write_video
from rl3dedit.pipeline.outputs import RUN_MARKER, OutputExistsError, atomic_run_dir, check_output_dir

__all__ = [
    "EditReport", "OutputExistsError", "RUN_MARKER", "STAGES", "atomic_run_dir", "check_output_dir", "run_edit",
    "write_video",
]

"""Orchestration of whole jobs across packages: where a scene comes from (`source`), the view set every job
edits (`view_set`), the single-pass edit and its run folders."""

from rl3dedit.pipeline.edit import STAGES, EditReport, run_edit, write_video
from rl3dedit.pipeline.outputs import RUN_MARKER, OutputExistsError, atomic_run_dir, check_output_dir
from rl3dedit.pipeline.source import LoadedScene, SceneSource, load_scene_source, scene_source_from_flags
from rl3dedit.pipeline.view_set import ViewSet, plan_view_set, prepare_view_set, render_size

__all__ = [
    "EditReport", "LoadedScene", "OutputExistsError", "RUN_MARKER", "STAGES", "SceneSource", "ViewSet",
    "atomic_run_dir", "check_output_dir", "load_scene_source", "plan_view_set", "prepare_view_set", "render_size",
    "run_edit", "scene_source_from_flags", "write_video",
]

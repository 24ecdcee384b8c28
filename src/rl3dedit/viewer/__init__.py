"""A web viewer (viser) for splat scenes and their edits: before/after toggle, edited views as frustums, turntable.

Entry points: `SceneViewer(source, edited, views=..., turntable=...)` (serves on 127.0.0.1 and exposes `url`),
`read_edit_run(run_dir)` for an edit run folder, `splat_arrays` for viser's splat format. viser is an optional
dependency (`pip install rl3dedit[view]`); importing this package does not import it.
"""

from rl3dedit.viewer.run_folder import EditedViews, EditRun, read_edit_run
from rl3dedit.viewer.server import HOST, SceneViewer, free_port
from rl3dedit.viewer.splats import splat_arrays

__all__ = ["EditRun", "EditedViews", "HOST", "SceneViewer", "free_port", "read_edit_run", "splat_arrays"]

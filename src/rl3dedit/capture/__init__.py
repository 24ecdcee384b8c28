"""From photos or a video to a posed dataset: COLMAP structure from motion (pycolmap, CPU) or feed-forward VGGT.

Entry points: `run_capture(source, out_dir, CaptureConfig(...))` writes a folder that `scene.load_capture` reads;
`is_unposed_folder` tells a folder of bare photos from a capture and `pose_folder` poses one (cached);
`sample_video` picks sharp frames of a video; `pose_errors` compares recovered poses with reference ones after a
similarity alignment.
"""

from rl3dedit.capture.alignment import pose_errors, umeyama
from rl3dedit.capture.config import CaptureConfig
from rl3dedit.capture.run import (
    CaptureReport,
    default_cache_dir,
    is_capture_output,
    is_unposed_folder,
    pose_folder,
    read_capture_report,
    run_capture,
)
from rl3dedit.capture.sfm import CaptureError
from rl3dedit.capture.video import sample_video

__all__ = [
    "CaptureConfig", "CaptureError", "CaptureReport", "default_cache_dir", "is_capture_output", "is_unposed_folder",
    "pose_errors", "pose_folder", "read_capture_report", "run_capture", "sample_video", "umeyama",
]

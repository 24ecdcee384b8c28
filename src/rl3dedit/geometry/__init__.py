"""Multi-view geometry: camera math (relative poses and their errors), depth warping and Ph-Loss, and VGGT."""

from rl3dedit.geometry import vggt
from rl3dedit.geometry.camera import (
    RelativePoseError,
    axis_angle_to_matrix,
    camera_translation_scale,
    invert_pose,
    matrix_to_quaternion,
    quaternion_to_matrix,
    relative_pose_error,
    relative_poses,
    rotation_angle_deg,
    to_homogeneous,
    translation_directions,
)
from rl3dedit.geometry.config import VerifierConfig
from rl3dedit.geometry.vggt import *  # noqa: F403  (exactly the VGGT package's public names)
from rl3dedit.geometry.warp import (
    DEFAULT_DEPTH_REL_THRESHOLD,
    PhotometricResult,
    ViewWarp,
    photometric_error,
    photometric_reprojection_loss,
    pixel_grid,
    ssim_dissimilarity,
    unproject_depth,
    warp_view,
)

__all__ = [
    "DEFAULT_DEPTH_REL_THRESHOLD",
    "PhotometricResult",
    "RelativePoseError",
    "VerifierConfig",
    "ViewWarp",
    "axis_angle_to_matrix",
    "camera_translation_scale",
    "invert_pose",
    "matrix_to_quaternion",
    "photometric_error",
    "photometric_reprojection_loss",
    "pixel_grid",
    "quaternion_to_matrix",
    "relative_pose_error",
    "relative_poses",
    "rotation_angle_deg",
    "ssim_dissimilarity",
    "to_homogeneous",
    "translation_directions",
    "unproject_depth",
    "warp_view",
    *vggt.__all__,
]

"""Multi-view geometry: camera math (relative poses and their errors), depth warping and Ph-Loss, and VGGT."""

from rl3dedit.geometry.camera import RelativePoseError, camera_translation_scale, relative_pose_error, relative_poses
from rl3dedit.geometry.config import VerifierConfig
from rl3dedit.geometry.vggt import (
    VGGT,
    VGGTOutput,
    build_tiny_vggt,
    extrinsic_to_viewmats,
    load_verifier,
    load_vggt,
    pose_encoding_to_extri_intri,
    preprocess_images,
    unproject_depth_map_to_point_map,
)
from rl3dedit.geometry.warp import (
    PhotometricResult,
    ViewWarp,
    photometric_reprojection_loss,
    unproject_depth,
    warp_view,
)

# The public API (19 names); helpers stay importable from their modules (`geometry.camera`, `geometry.warp`,
# `geometry.vggt`).
__all__ = [
    "VerifierConfig",
    "RelativePoseError",
    "relative_poses",
    "relative_pose_error",
    "camera_translation_scale",
    "photometric_reprojection_loss",
    "PhotometricResult",
    "warp_view",
    "ViewWarp",
    "unproject_depth",
    "VGGT",
    "VGGTOutput",
    "load_verifier",
    "load_vggt",
    "build_tiny_vggt",
    "preprocess_images",
    "pose_encoding_to_extri_intri",
    "extrinsic_to_viewmats",
    "unproject_depth_map_to_point_map",
]

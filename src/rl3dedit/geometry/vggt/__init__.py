"""Our VGGT (Wang et al., CVPR 2025): checkpoint-compatible with facebook/VGGT-1B, numerically matching upstream.

Entry points: `load_verifier(cfg, device)` (what the run config names), `load_vggt(path_or_hub_id)`,
`build_tiny_vggt(seed)`, `preprocess_images`, `VGGT.__call__ -> VGGTOutput`, `pose_encoding_to_extri_intri`.
See docs/vggt.md.
"""

from rl3dedit.geometry.vggt.config import VGGTConfig
from rl3dedit.geometry.vggt.loading import (
    HUB_IDS,
    build_from_state_dict,
    build_tiny_vggt,
    load_state_dict_file,
    load_verifier,
    load_vggt,
)
from rl3dedit.geometry.vggt.model import VGGT, VGGTOutput
from rl3dedit.geometry.vggt.pose_encoding import (
    ExtriIntri,
    extri_intri_to_pose_encoding,
    extrinsic_to_viewmats,
    pose_encoding_to_extri_intri,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
    unproject_depth_map_to_point_map,
)
from rl3dedit.geometry.vggt.preprocessing import preprocess_images, preprocessed_size

# The public API; the sub-configs and the xyzw quaternion maths stay importable from their modules.
__all__ = [
    "VGGT",
    "VGGTOutput",
    "VGGTConfig",
    "HUB_IDS",
    "load_vggt",
    "load_verifier",
    "build_tiny_vggt",
    "build_from_state_dict",
    "load_state_dict_file",
    "preprocess_images",
    "preprocessed_size",
    "ExtriIntri",
    "pose_encoding_to_extri_intri",
    "extri_intri_to_pose_encoding",
    "unproject_depth_map_to_point_map",
    "extrinsic_to_viewmats",
    "quat_xyzw_to_wxyz",
    "quat_wxyz_to_xyzw",
]

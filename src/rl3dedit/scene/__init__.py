"""3D data in and out: Gaussian scenes, cameras, captures and their file formats."""

from rl3dedit.scene.cameras import CameraRecords, Cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.scene.cameras_json import read_cameras_json, write_cameras_json
from rl3dedit.scene.capture import Capture, load_camera_records, load_cameras, load_capture
from rl3dedit.scene.colmap import read_colmap
from rl3dedit.scene.gaussians import SH_C0, GaussianScene, rgb_to_sh_dc
from rl3dedit.scene.nerfstudio import read_camera_path, read_transforms_json
from rl3dedit.scene.ply import PointCloud, read_ply, read_points_ply, write_ply

# The public API (20 names); helpers (format details, distortion, rigid poses in `scene.pose`) are imported from
# their modules.
__all__ = [
    "CameraRecords",
    "Cameras",
    "Capture",
    "GaussianScene",
    "PointCloud",
    "SH_C0",
    "intrinsics_from_fov",
    "load_camera_records",
    "load_cameras",
    "load_capture",
    "look_at_viewmats",
    "read_camera_path",
    "read_cameras_json",
    "read_colmap",
    "read_ply",
    "read_points_ply",
    "read_transforms_json",
    "rgb_to_sh_dc",
    "write_cameras_json",
    "write_ply",
]

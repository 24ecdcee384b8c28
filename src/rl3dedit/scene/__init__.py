"""3D data in and out: Gaussian scenes, cameras, captures and their file formats."""

from rl3dedit.scene.cameras import CameraRecords, Cameras, checked_cameras, intrinsics_from_fov, look_at_viewmats
from rl3dedit.scene.cameras_json import read_cameras_json, write_cameras_json
from rl3dedit.scene.capture import (
    Capture,
    downscale_capture_images,
    load_camera_records,
    load_cameras,
    load_capture,
    undistort_views,
)
from rl3dedit.scene.colmap import ColmapModel, find_colmap_model, read_colmap
from rl3dedit.scene.distortion import distort_normalized, undistort_images
from rl3dedit.scene.gaussians import SH_C0, GaussianScene, rgb_to_sh_dc, sh_degree_from_rest
from rl3dedit.scene.nerfstudio import (
    NerfstudioCapture,
    dataparser_transform,
    opengl_c2w_to_viewmats,
    read_camera_path,
    read_transforms_json,
    viewmats_to_opengl_c2w,
)
from rl3dedit.scene.ply import PointCloud, read_ply, read_points_ply, splat_property_names, write_ply
from rl3dedit.scene.pose import quaternion_to_matrix

__all__ = [
    "quaternion_to_matrix",
    "SH_C0",
    "CameraRecords",
    "Cameras",
    "Capture",
    "ColmapModel",
    "GaussianScene",
    "NerfstudioCapture",
    "PointCloud",
    "checked_cameras",
    "dataparser_transform",
    "distort_normalized",
    "downscale_capture_images",
    "find_colmap_model",
    "intrinsics_from_fov",
    "load_camera_records",
    "load_cameras",
    "load_capture",
    "look_at_viewmats",
    "opengl_c2w_to_viewmats",
    "read_camera_path",
    "read_cameras_json",
    "read_colmap",
    "read_ply",
    "read_points_ply",
    "read_transforms_json",
    "rgb_to_sh_dc",
    "sh_degree_from_rest",
    "splat_property_names",
    "undistort_images",
    "undistort_views",
    "viewmats_to_opengl_c2w",
    "write_cameras_json",
    "write_ply",
]

"""VGGT prediction heads: camera (iterative pose encoding), DPT (depth / points), track (weights only)."""

from rl3dedit.geometry.vggt.heads.camera import CameraHead, activate_pose
from rl3dedit.geometry.vggt.heads.dpt import DPTHead, uv_embedding
from rl3dedit.geometry.vggt.heads.track import TrackHead

__all__ = ["CameraHead", "activate_pose", "DPTHead", "uv_embedding", "TrackHead"]

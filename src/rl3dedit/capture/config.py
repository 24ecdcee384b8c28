"""Settings of `rl3dedit capture`: photos or a video -> posed pinhole images."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CaptureConfig(BaseModel):
    """How a folder of photos (or a video) is posed. Defaults follow COLMAP's own where a value is not stated."""

    model_config = ConfigDict(extra="forbid")

    poses: Literal["colmap", "vggt"] = "colmap"
    """`colmap`: SIFT + matching + incremental mapping (pycolmap, CPU). `vggt`: feed-forward VGGT camera head + depth."""
    matcher: Literal["auto", "exhaustive", "sequential"] = "auto"
    """`auto` matches all pairs up to `exhaustive_max_images` images and consecutive frames above (video order)."""
    exhaustive_max_images: int = Field(100, ge=2)
    sequential_overlap: int = Field(10, ge=1)
    """Sequential matching pairs each image with this many following ones (COLMAP's default, quadratic overlap on)."""
    camera_model: Literal["SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV"] = "OPENCV"
    """One shared camera for all images (photos from one device); undistortion turns it into PINHOLE. OPENCV (as
    nerfstudio's ns-process-data) has separate fx and fy: videos resized to a square need it (benchmarks/RESULTS.md)."""
    max_image_size: int = Field(1600, ge=64)
    """Longer side used for SIFT extraction (COLMAP's default 3200 is needlessly slow on CPU for splat captures)."""
    max_num_features: int = Field(8192, ge=64)
    min_images: int = Field(3, ge=2)
    min_registered_fraction: float = Field(0.5, gt=0.0, le=1.0)
    """Fewer registered images than this fraction of the input is an error naming the images left out."""
    video_frames: int = Field(100, ge=2)
    """Frames sampled from a video input (the sharpest of each equal window)."""
    num_threads: int = -1
    """CPU threads for pycolmap (-1: all)."""
    seed: int = 0
    vggt_model: str = "facebook/VGGT-1B"
    """Weights for `poses: vggt`: a local file/folder or a hub id (resolved like the verifier's)."""
    vggt_confidence_quantile: float = Field(0.5, ge=0.0, lt=1.0)
    """`poses: vggt`: depth points below this quantile of VGGT's depth confidence are dropped from the point cloud."""

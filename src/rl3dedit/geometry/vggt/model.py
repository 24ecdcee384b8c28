"""VGGT: aggregator + camera, depth, point (and track) heads (https://github.com/facebookresearch/vggt; docs/vggt.md).

Reads like upstream `vggt/models/vggt.py`; parameter names equal the checkpoint keys (`aggregator.*`,
`camera_head.*`, `depth_head.*`, `point_head.*`, `track_head.*`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn

from rl3dedit.geometry.vggt.aggregator import Aggregator
from rl3dedit.geometry.vggt.config import VGGTConfig
from rl3dedit.geometry.vggt.heads import CameraHead, DPTHead, TrackHead

__all__ = ["VGGT", "VGGTOutput"]


@dataclass
class VGGTOutput:
    """Predictions for B scenes of S frames at H x W (fields are None when the head is switched off).

    pose_enc: (B, S, 9) [t | quat xyzw | fov_h, fov_w], camera-from-world (OpenCV), last camera iteration.
    pose_enc_list: every camera iteration, each (B, S, 9) (the last equals `pose_enc`).
    depth: (B, S, H, W, 1) > 0, z-depth in the first camera's normalised (up-to-scale) units.
    depth_conf: (B, S, H, W) >= 1 (1 + exp), roughly an inverse expected error.
    world_points: (B, S, H, W, 3) in the frame of camera 0, up to scale.
    world_points_conf: (B, S, H, W) >= 1.
    images: (B, S, 3, H, W) the input in [0, 1] (echoed like upstream's eval mode).
    """

    pose_enc: Tensor | None = None
    pose_enc_list: list[Tensor] = field(default_factory=list)
    depth: Tensor | None = None
    depth_conf: Tensor | None = None
    world_points: Tensor | None = None
    world_points_conf: Tensor | None = None
    images: Tensor | None = None

    def __getitem__(self, key: str) -> Tensor | list[Tensor]:
        """Upstream-style access by key, e.g. `out["depth"]`; KeyError for unknown or switched-off outputs."""
        names = [f.name for f in fields(self)]
        if key not in names:
            raise KeyError(f"{key!r} is not a VGGT output; keys: {', '.join(names)}")
        value = getattr(self, key)
        if value is None or (isinstance(value, list) and not value):
            raise KeyError(f"{key!r} was not predicted (its head is switched off)")
        return value

    def keys(self) -> Iterator[str]:
        """Names of the outputs that are present."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not (isinstance(value, list) and not value):
                yield f.name


class VGGT(nn.Module):
    """Visual Geometry Grounded Transformer (Wang et al., CVPR 2025), checkpoint-compatible with facebook/VGGT-1B.

    Args:
        config: architecture (default VGGT-1B).
        amp_dtype: when set (e.g. torch.bfloat16 on GPU), the aggregator runs under autocast in that dtype and the
            heads in full precision; the aggregator's residual stream stays fp32 (docs/references.md §4).
        frames_chunk_size: frames per DPT-head pass (upstream default 8; None = all frames at once). Bounds the
            memory of the full-resolution head activations; the result does not depend on it.
    """

    def __init__(self, config: VGGTConfig | None = None, *, amp_dtype: torch.dtype | None = None,
                 frames_chunk_size: int | None = 8):
        super().__init__()
        self.config = config = config or VGGTConfig()
        self.amp_dtype = amp_dtype
        self.frames_chunk_size = frames_chunk_size
        agg = config.aggregator
        n_out = agg.depth
        for name, enabled, head in (("depth_head", config.enable_depth, config.depth_head),
                                    ("point_head", config.enable_point, config.point_head)):
            if enabled and max(head.intermediate_layer_idx) >= n_out:
                raise ValueError(f"{name}.intermediate_layer_idx {head.intermediate_layer_idx} exceeds the "
                                 f"{n_out} aggregator outputs")
        self.aggregator = Aggregator(agg)
        self.camera_head = CameraHead(config.camera_head) if config.enable_camera else None
        # Registration order follows upstream so that state_dict() lists keys in checkpoint order.
        self.point_head = DPTHead(config.point_head) if config.enable_point else None
        self.depth_head = DPTHead(config.depth_head) if config.enable_depth else None
        self.track_head = (TrackHead(config.track_head, 2 * agg.embed_dim, agg.patch_size)
                           if config.enable_track else None)

    def forward(self, images: Tensor, query_points: Tensor | None = None) -> VGGTOutput:
        """Run the model.

        Args:
            images: (B, S, 3, H, W) or (S, 3, H, W) floats in [0, 1] (not ImageNet-normalised; that happens
                inside). A 4-D input is one scene: B = 1 is added, as upstream does. H and W must be multiples of
                the patch size (14); use `preprocess_images`. Frame 0 is the reference (world) frame.
            query_points: unsupported (point tracking is not implemented); must be None.
        Returns:
            VGGTOutput with B present even for 4-D input.
        """
        if query_points is not None:
            raise NotImplementedError("VGGT point tracking (query_points) is not implemented in rl3dedit")
        images = self._check_images(images)
        H, W = images.shape[-2:]
        with self._autocast(images.device, self.amp_dtype):
            agg = self.aggregator(images, keep=self._layers_read())
        out = VGGTOutput(images=images)
        with self._autocast(images.device, None):
            if self.camera_head is not None:
                out.pose_enc_list = self.camera_head(agg.tokens[-1])
                out.pose_enc = out.pose_enc_list[-1]
            if self.depth_head is not None:
                out.depth, out.depth_conf = self.depth_head(agg.tokens, (H, W), agg.patch_start_idx,
                                                            self.frames_chunk_size)
            if self.point_head is not None:
                out.world_points, out.world_points_conf = self.point_head(agg.tokens, (H, W), agg.patch_start_idx,
                                                                          self.frames_chunk_size)
        return out

    @torch.inference_mode()
    def predict(self, images: Tensor, *, sdpa_backends: Sequence[torch.nn.attention.SDPBackend] | None = None
                ) -> VGGTOutput:
        """Forward in eval mode under `torch.inference_mode`, optionally restricting the SDPA kernels
        (e.g. `[SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]` on GPU). Restores the training flag."""
        was_training = self.training
        self.eval()
        try:
            ctx = (torch.nn.attention.sdpa_kernel(list(sdpa_backends)) if sdpa_backends
                   else contextlib.nullcontext())
            with ctx:
                return self(images)
        finally:
            self.train(was_training)

    def _layers_read(self) -> set[int]:
        """Aggregator outputs some head reads (the camera head reads the last)."""
        n = self.config.aggregator.depth
        keep = {n - 1} if self.camera_head is not None else set()
        for head in (self.depth_head, self.point_head):
            if head is not None:
                keep.update(head.cfg.intermediate_layer_idx)
        if self.track_head is not None:
            keep.update(self.track_head.cfg.intermediate_layer_idx)
        return {i % n for i in keep}

    def _check_images(self, images: Tensor) -> Tensor:
        if images.dim() == 4:
            images = images.unsqueeze(0)
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images must be (S, 3, H, W) or (B, S, 3, H, W), got {tuple(images.shape)}")
        p = self.config.aggregator.patch_size
        H, W = images.shape[-2:]
        if H % p or W % p:
            raise ValueError(f"image height and width must be multiples of {p}, got {H}x{W}; "
                             "use rl3dedit.geometry.vggt.preprocess_images")
        if not images.is_floating_point():
            raise ValueError(f"images must be floats in [0, 1], got dtype {images.dtype}")
        return images

    @staticmethod
    def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
        """Autocast in `dtype`, or autocast explicitly disabled (heads run in the parameters' precision)."""
        if dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=dtype)

"""Architecture description of our VGGT: defaults are VGGT-1B (docs/references.md §4).

`VGGTConfig.from_json` reads the `config.json` schema of the VGGT conformance fixtures (docs/vggt.md);
informational keys (`fixture`, `seed`, `inputs`, `derived`, `fixed_in_code`, ...) are ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rl3dedit.files import read_json

__all__ = [
    "DinoConfig",
    "AggregatorConfig",
    "CameraHeadConfig",
    "DPTHeadConfig",
    "TrackHeadConfig",
    "VGGTConfig",
]


@dataclass(frozen=True)
class DinoConfig:
    """The DINOv2 ViT used as `aggregator.patch_embed` (VGGT-1B: ViT-L/14 with 4 registers)."""

    img_size: int = 518
    """Side of the square image the learned position table is built for (table grid = img_size // patch_size)."""
    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    """DINOv2's own registers (`register_tokens`), independent of the aggregator's."""
    qkv_bias: bool = True
    proj_bias: bool = True
    ffn_bias: bool = True
    interpolate_antialias: bool = True
    interpolate_offset: float = 0.0
    """0 resizes the position table to an explicit size; > 0 uses DINOv2's scale-factor kludge."""
    init_values: float | None = 1.0
    """LayerScale init; None means no LayerScale (`ls1`/`ls2` absent)."""
    layer_norm_eps: float = 1e-6
    type: Literal["dinov2"] = "dinov2"
    """Patch-embedding kind; only the DINOv2 ViT (what VGGT-1B uses) is implemented."""
    ffn_layer: Literal["mlp"] = "mlp"
    """DINOv2 block MLP kind; only the plain GELU MLP (ViT-L/14) is implemented."""

    def __post_init__(self) -> None:
        if self.type != "dinov2":
            raise ValueError(f"patch_embed.type {self.type!r} is not supported; only 'dinov2' is implemented")
        if self.ffn_layer != "mlp":
            raise ValueError(f"patch_embed.ffn_layer {self.ffn_layer!r} is not supported; only 'mlp' is implemented")


@dataclass(frozen=True)
class AggregatorConfig:
    """Alternating frame/global attention trunk."""

    img_size: int = 518
    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    qkv_bias: bool = True
    proj_bias: bool = True
    ffn_bias: bool = True
    qk_norm: bool = True
    rope_freq: float = 100.0
    """2D RoPE base; <= 0 disables RoPE."""
    init_values: float | None = 0.01
    aa_order: tuple[str, ...] = ("frame", "global")
    aa_block_size: int = 1
    block_layer_norm_eps: float = 1e-5
    patch_embed: DinoConfig = field(default_factory=DinoConfig)

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token in a frame's sequence: [camera (1), registers, patches]."""
        return 1 + self.num_register_tokens


@dataclass(frozen=True)
class CameraHeadConfig:
    """Iterative camera head."""

    dim_in: int = 2048
    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    init_values: float | None = 0.01
    num_iterations: int = 4
    pose_encoding_type: Literal["absT_quaR_FoV"] = "absT_quaR_FoV"
    trans_act: str = "linear"
    quat_act: str = "linear"
    fl_act: str = "relu"


@dataclass(frozen=True)
class DPTHeadConfig:
    """DPT dense head. Defaults: the VGGT-1B point head."""

    dim_in: int = 2048
    patch_size: int = 14
    features: int = 256
    out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    intermediate_layer_idx: tuple[int, int, int, int] = (4, 11, 17, 23)
    pos_embed: bool = True
    feature_only: bool = False
    down_ratio: int = 1
    output_dim: int = 4
    activation: Literal["exp", "inv_log", "linear"] = "inv_log"
    conf_activation: Literal["expp1", "expp0", "sigmoid"] = "expp1"


def _default_depth_head() -> DPTHeadConfig:
    return DPTHeadConfig(output_dim=2, activation="exp")


@dataclass(frozen=True)
class TrackHeadConfig:
    """Track head module sizes; only used so that `track_head.*` keys load."""

    features: int = 128
    iters: int = 4
    stride: int = 2
    corr_levels: int = 7
    corr_radius: int = 4
    hidden_size: int = 384
    depth: int = 6
    num_heads: int = 8
    num_virtual_tracks: int = 64
    mlp_ratio: float = 4.0
    predict_conf: bool = True
    out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    intermediate_layer_idx: tuple[int, int, int, int] = (4, 11, 17, 23)


@dataclass(frozen=True)
class VGGTConfig:
    """Whole-model architecture; `VGGTConfig()` is VGGT-1B (1,256,537,516 parameters with the track head)."""

    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    camera_head: CameraHeadConfig = field(default_factory=CameraHeadConfig)
    depth_head: DPTHeadConfig = field(default_factory=_default_depth_head)
    point_head: DPTHeadConfig = field(default_factory=DPTHeadConfig)
    track_head: TrackHeadConfig = field(default_factory=TrackHeadConfig)
    enable_camera: bool = True
    enable_depth: bool = True
    enable_point: bool = True
    enable_track: bool = True
    """Upstream `VGGT()` builds the track head by default; the reward model switches it off."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "VGGTConfig":
        """Build from the fixture schema; unknown keys are ignored, wrong types raise naming `source`."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(data).__name__}")
        try:
            agg = dict(data.get("aggregator", {}))
            dino = _pick(DinoConfig, agg.pop("patch_embed", {}))
            kwargs: dict[str, Any] = {"aggregator": _pick(AggregatorConfig, agg, patch_embed=dino)}
            for name, klass in (("camera_head", CameraHeadConfig), ("depth_head", DPTHeadConfig),
                                ("point_head", DPTHeadConfig), ("track_head", TrackHeadConfig)):
                if name in data:
                    kwargs[name] = _pick(klass, data[name])
            for flag in ("enable_camera", "enable_depth", "enable_point", "enable_track"):
                if flag in data:
                    kwargs[flag] = bool(data[flag])
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: not a valid VGGT config: {exc}") from exc

    @classmethod
    def from_json(cls, path: str | Path) -> "VGGTConfig":
        """Read a fixture-style `config.json` (the conformance fixtures' layout, docs/vggt.md)."""
        path = Path(path)
        data = read_json(path, "VGGT config (a fixture-style config.json)")
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the same schema `from_dict` reads (round-trips)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def tiny(cls) -> "VGGTConfig":
        """The tiny_a fixture architecture (C=64, 5 aggregator blocks, 56-px position table), no track head.

        Used by `build_tiny_vggt` for tests and the tiny preset; any H, W that are multiples of 14 work.
        """
        dpt = {"dim_in": 128, "features": 32, "out_channels": (16, 32, 64, 64), "intermediate_layer_idx": (0, 2, 3, 4)}
        return cls(
            aggregator=AggregatorConfig(
                img_size=56, embed_dim=64, depth=5, num_heads=4,
                patch_embed=DinoConfig(img_size=56, embed_dim=64, depth=2, num_heads=2, num_register_tokens=2),
            ),
            camera_head=CameraHeadConfig(dim_in=128, trunk_depth=2, num_heads=4),
            depth_head=DPTHeadConfig(output_dim=2, activation="exp", **dpt),
            point_head=DPTHeadConfig(output_dim=4, activation="inv_log", **dpt),
            track_head=TrackHeadConfig(features=32, hidden_size=64, depth=1, num_heads=2, num_virtual_tracks=8,
                                       out_channels=(16, 32, 64, 64), intermediate_layer_idx=(0, 2, 3, 4)),
            enable_track=False,
        )


def _pick(klass: type, data: dict[str, Any], **extra: Any) -> Any:
    """Instantiate `klass` from the keys of `data` it knows (lists become tuples where the field is a tuple)."""
    if not isinstance(data, dict):
        raise TypeError(f"{klass.__name__} section must be an object, found {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(klass)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    kwargs.update(extra)
    return klass(**kwargs)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value

"""Verifier (VGGT) settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator


class VerifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "tiny"
    """`tiny` (a small random VGGT for pipeline checks), `facebook/VGGT-1B`, `facebook/VGGT-1B-Commercial`,
    or a local `model.pt` / `.safetensors` path."""
    config: str | None = None
    """Optional VGGTConfig JSON for local weights of a non-default architecture."""
    image_size: int = 518
    """Preprocessing width (multiple of 14)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Aggregator compute dtype: `bfloat16` runs it under autocast (weights and heads stay float32)."""
    preprocess_mode: Literal["crop", "pad"] = "crop"
    """VGGT preprocessing: `crop` (width -> image_size, centre crop) or `pad` (longer side, white padding)."""
    frames_chunk_size: int | None = 8
    """Frames per DPT-head pass (memory bound; no effect on values); None = all frames at once."""
    tiny_seed: int = 0
    """Weight seed of the `tiny` model."""

    @field_validator("image_size")
    @classmethod
    def _multiple_of_patch(cls, value: int) -> int:
        if value <= 0 or value % 14:
            raise ValueError(f"verifier.image_size must be a positive multiple of 14 (VGGT patch size), got {value}")
        return value

    @field_validator("frames_chunk_size")
    @classmethod
    def _positive_chunk(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(f"verifier.frames_chunk_size must be positive or null, got {value}")
        return value

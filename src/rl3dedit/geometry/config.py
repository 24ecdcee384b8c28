"""Verifier (VGGT) settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict


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

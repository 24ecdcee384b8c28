"""Editor (FLUX.1-Kontext grid editor) settings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EditorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "tiny"
    """`tiny` (offline random tiny build), a hub id (black-forest-labs/FLUX.1-Kontext-dev) or a local diffusers folder."""
    transformer_file: str | None = None
    """Optional single-file transformer (e.g. the released rl3dedit-flux-kontext.safetensors, local path or repo/file)."""
    lora: str | None = None
    """Optional LoRA adapter folder (peft/diffusers format) to apply to the transformer."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    cpu_offload: bool = False
    vae_tiling: bool = False
    num_steps: int = Field(28, ge=1)
    guidance_scale: float = 2.5
    seed: int = 42
    max_sequence_length: int = Field(512, ge=1, le=512)
    """T5 tokens of the prompt (diffusers caps it at 512)."""
    tiny_seed: int = 0
    """Weight seed of the offline tiny pipeline (`model: tiny`)."""

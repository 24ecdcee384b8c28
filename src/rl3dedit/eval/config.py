"""Evaluation settings."""

from pydantic import BaseModel, ConfigDict


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip_model: str = "tiny"
    """`tiny` (offline random CLIP), or a hub id / local folder (openai/clip-vit-large-patch14)."""

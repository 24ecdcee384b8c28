"""Scene-loading settings."""

from pydantic import BaseModel, ConfigDict, Field


class SceneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    downscale: int = Field(1, ge=1)
    """Integer image downscale applied when loading a capture (1 = full resolution)."""

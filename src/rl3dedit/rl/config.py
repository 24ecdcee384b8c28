"""GRPO training settings."""

from pydantic import BaseModel, ConfigDict, Field


class RLConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_size: int = Field(16, ge=2)
    num_steps: int = Field(12, ge=1)
    noise_level: float = Field(0.8, ge=0.0)
    window_size: int = Field(4, ge=1)

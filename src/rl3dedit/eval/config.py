"""Evaluation settings (the `eval:` section of a preset)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MetricName = Literal["clip", "ph_loss", "ph_loss_rendered_depth", "vggt", "viescore", "time"]
"""Metric families `rl3dedit eval` can compute; `eval.metrics` picks a subset."""

ALL_METRICS: tuple[MetricName, ...] = ("clip", "ph_loss", "ph_loss_rendered_depth", "vggt", "viescore", "time")


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip_model: str = "tiny"
    """`tiny` (offline random CLIP), or a hub id / local folder (openai/clip-vit-large-patch14)."""
    clip_preprocess: Literal["squash", "crop"] = "crop"
    """How views become CLIP's 224x224 input: `crop` = OpenAI CLIP's (resize the short side, centre-crop; drops the
    sides of wide views); `squash` = IN2N's metrics script (resize the whole view to 224x224)."""
    metrics: list[MetricName] = Field(default_factory=lambda: list(ALL_METRICS))
    """Metric families to compute; leave one out to skip its model (e.g. drop `ph_loss`/`vggt` without VGGT weights)."""
    render_size: int | None = Field(None, ge=16)
    """Longer side (px) of the evaluation renders; None = `views.view_size`."""
    ph_depth_rel_threshold: float = Field(0.05, gt=0)
    """Ph-Loss validity mask: |D_{A->B} - D_B| < threshold * D_B (tau is not stated by the paper; see docs)."""
    judge_model: str = "gpt-4.1"
    """VIEScore judge model; the environment variable RL3DEDIT_JUDGE_MODEL overrides it (paper: GPT-4.1)."""
    judge_views: int = Field(3, ge=1)
    """Evaluation views per case shown to the judge (evenly spaced); VIEScore is averaged over them."""
    judge_prompts: str | None = None
    """None = our judge prompts; a folder = VIEScore's own prompt files from a copy of the public repository
    (https://github.com/TIGER-AI-Lab/VIEScore: its `viescore/prompts_raw`, or a folder holding it), to reproduce
    published VIEScore numbers."""
    judge_timeout_s: float = Field(60.0, gt=0)
    """HTTP timeout of one judge request."""
    judge_image_size: int = Field(512, ge=64)
    """Longer side (px) of the images sent to the judge."""
    turntable_frames: int = Field(36, ge=2)
    """Frames of each edit's turntable video (our edits only; shown in report.html)."""
    report_max_video_mb: float = Field(4.0, ge=0)
    """Turntables up to this size are embedded as video in report.html; all get a frame strip."""

"""rl3dedit.editor: the FLUX.1-Kontext grid editor (the 2D policy), its SDE rollouts and log-probs, and LoRA."""

from rl3dedit.editor.components import (
    MissingModelError,
    build_tiny_clip_text_config,
    build_tiny_clip_tokenizer,
    build_tiny_pipeline,
    build_tiny_t5_tokenizer,
    load_pipeline,
)
from rl3dedit.editor.config import EditorConfig
from rl3dedit.editor.grid_editor import KontextGridEditor
from rl3dedit.editor.lora import KONTEXT_LORA_TARGETS, adapters_disabled
from rl3dedit.editor.protocol import Editor
from rl3dedit.editor.prompts import EnhanceSettings, enhance_instruction, grid_prompt
from rl3dedit.editor.rollout import EditResult, Rollout, StepLogProb
from rl3dedit.editor.sde import SDEStep, WindowSchedule, gaussian_log_prob, sde_std_dev, sde_step, window_steps

__all__ = [
    "KONTEXT_LORA_TARGETS",
    "EditResult",
    "Editor",
    "EditorConfig",
    "EnhanceSettings",
    "KontextGridEditor",
    "MissingModelError",
    "Rollout",
    "SDEStep",
    "StepLogProb",
    "WindowSchedule",
    "adapters_disabled",
    "build_tiny_clip_text_config",
    "build_tiny_clip_tokenizer",
    "build_tiny_pipeline",
    "build_tiny_t5_tokenizer",
    "enhance_instruction",
    "gaussian_log_prob",
    "grid_prompt",
    "load_pipeline",
    "sde_std_dev",
    "sde_step",
    "window_steps",
]

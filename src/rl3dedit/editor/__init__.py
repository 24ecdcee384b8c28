"""rl3dedit.editor: the FLUX.1-Kontext grid editor (the 2D policy), its SDE rollouts and log-probs, and LoRA.

Names are imported on first use (`rl3dedit.lazy`), so configs and the CLI load without diffusers or transformers.
"""

from rl3dedit.lazy import lazy_exports

_EXPORTS = {
    "EditResult": "rl3dedit.editor.rollout",
    "Condition": "rl3dedit.editor.rollout",
    "Editor": "rl3dedit.editor.protocol",
    "EditorConfig": "rl3dedit.editor.config",
    "KONTEXT_LORA_TARGETS": "rl3dedit.editor.lora",
    "KontextGridEditor": "rl3dedit.editor.grid_editor",
    "MissingModelError": "rl3dedit.editor.components",
    "Rollout": "rl3dedit.editor.rollout",
    "SDEStep": "rl3dedit.editor.sde",
    "StepLogProb": "rl3dedit.editor.rollout",
    "TrainableEditor": "rl3dedit.editor.protocol",
    "WindowSchedule": "rl3dedit.editor.sde",
    "adapters_disabled": "rl3dedit.editor.lora",
    "build_tiny_clip_text_config": "rl3dedit.editor.components",
    "build_tiny_clip_tokenizer": "rl3dedit.editor.components",
    "build_tiny_pipeline": "rl3dedit.editor.components",
    "build_tiny_t5_tokenizer": "rl3dedit.editor.components",
    "edit_prompt": "rl3dedit.editor.prompts",
    "edit_seed": "rl3dedit.editor.prompts",
    "enhance_instruction": "rl3dedit.editor.prompts",
    "gaussian_log_prob": "rl3dedit.editor.sde",
    "grid_prompt": "rl3dedit.editor.prompts",
    "load_pipeline": "rl3dedit.editor.components",
    "sde_std_dev": "rl3dedit.editor.sde",
    "sde_step": "rl3dedit.editor.sde",
    "window_steps": "rl3dedit.editor.sde",
}

# The public API (20 names). Helpers and test builders stay importable from the package but are not part of it.
__all__ = [
    "Condition",
    "EditResult",
    "Editor",
    "EditorConfig",
    "KONTEXT_LORA_TARGETS",
    "KontextGridEditor",
    "MissingModelError",
    "Rollout",
    "SDEStep",
    "StepLogProb",
    "TrainableEditor",
    "WindowSchedule",
    "adapters_disabled",
    "build_tiny_pipeline",
    "edit_prompt",
    "edit_seed",
    "enhance_instruction",
    "grid_prompt",
    "load_pipeline",
    "sde_step",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

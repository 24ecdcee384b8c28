"""Editor (FLUX.1-Kontext grid editor) settings."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PromptMode = Literal["raw", "template", "enhance"]
"""What the editor is sent: the instruction as given, the grid template, or an LLM rewrite (`editor.prompts`)."""
SeedMode = Literal["release", "fixed"]
"""`fixed`: `editor.seed`; `release`: seed XOR int(md5(instruction)[:8], 16), as the released inference script."""


class EditorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _legacy_cpu_offload(cls, data: Any) -> Any:
        """v0.1 configs said `cpu_offload: true|false`; it meant `offload: model|none`."""
        if isinstance(data, dict) and "cpu_offload" in data:
            data = dict(data)
            legacy = data.pop("cpu_offload")
            if "offload" in data:
                raise ValueError("editor: give offload (none | model | sequential), not also the old cpu_offload")
            data["offload"] = "model" if legacy else "none"
        return data

    model: str = "tiny"
    """`tiny` (offline random tiny build), a hub id (black-forest-labs/FLUX.1-Kontext-dev) or a local diffusers folder."""
    transformer_file: str | None = None
    """Optional single-file transformer (e.g. the released rl3dedit-flux-kontext.safetensors, local path or repo/file)."""
    lora: str | None = None
    """Optional LoRA adapter folder (peft/diffusers format) to apply to the transformer."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    offload: Literal["none", "model", "sequential"] = "none"
    """GPU memory vs speed (docs/editor.md has the peak per setting): `none` keeps every component on the GPU
    (~31 GiB for FLUX.1-Kontext in bf16), `model` moves one whole component at a time to the GPU (peak = the
    transformer, ~22 GiB in bf16), `sequential` streams submodules (a few GiB, several times slower). CUDA only."""
    quantize: Literal["none", "int8"] = "none"
    """Transformer weights: `int8` loads them int8 weight-only through diffusers' torchao backend (about half the
    bf16 memory; CPU and CUDA; needs `pip install torchao`)."""
    vae_tiling: bool = False
    num_steps: int = Field(28, ge=1)
    guidance_scale: float = Field(2.5, ge=0)
    """FLUX embedded guidance; negative values have no meaning (the model was distilled for >= 0)."""
    seed: int = 42
    seed_mode: SeedMode = "fixed"
    """How an edit's generator seed follows from `seed` (`editor.prompts.edit_seed`)."""
    prompt_mode: PromptMode = "template"
    """How the instruction becomes the prompt (`editor.prompts.edit_prompt`); `--enhance` selects `enhance`."""
    max_sequence_length: int = Field(512, ge=1, le=512)
    """T5 tokens of the prompt (diffusers caps it at 512)."""
    tiny_seed: int = 0
    """Weight seed of the offline tiny pipeline (`model: tiny`)."""
    candidates: int = Field(1, ge=1)
    """Best-of-N: edits sampled with seeds seed, seed + 1, ...; each is scored with `rewards.view_reward` and the
    best is refitted (`pipeline.candidates`). 1 = the single edit."""
    candidate_batch_size: int = Field(1, ge=1)
    """Best-of-N candidates sent through the transformer together (one grid per view set only; more grids are
    edited one candidate after another). Each adds one grid's activations to the peak memory; 1 = sequential."""
    candidate_anchor_weight: float = Field(0.0, ge=0)
    """Best-of-N selection score = view-set total + this x r_a, r_a comparing each candidate's middle view with a
    single-view edit of it (paper Eq. 3; needs `rewards` LPIPS settings); > 0 keeps an unedited, trivially
    consistent candidate from winning. 0 = consistency only (no single-view edit is run)."""

"""GRPO training settings (the `rl:` section of a preset).

Names follow the project glossary (`group_size`, `clip_range`, `kl_coef`, `noise_level`, `window_size`,
`num_steps`). Values the paper leaves open default to Flow-GRPO's (https://arxiv.org/abs/2505.05470);
docs/training.md lists each choice.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RLConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- rollouts (the paper's SDE exploration, window and group)
    group_size: int = Field(16, ge=2)
    """G, rollouts per condition (paper: 16). GRPO needs at least 2 to compare."""
    num_steps: int = Field(12, ge=2)
    """Denoising steps of a training rollout (paper: 12)."""
    noise_level: float = Field(0.8, gt=0.0, le=2.0)
    """SDE noise level a inside the window (paper: 0.8; std_dev_t = a·sqrt(t/(1-t)))."""
    window_size: int = Field(4, ge=1)
    """MixGRPO window: consecutive SDE (and trained) steps per rollout (paper: 4)."""
    window_strategy: Literal["progressive", "random"] = "progressive"
    """How the window start moves over updates (the paper names MixGRPO, not its movement): `progressive` =
    MixGRPO's slide (from window_min_start, `window_stride` steps every `window_iters_per_shift` updates, stopping
    at window_max_start); `random` = Flow-GRPO-Fast (uniform in window_min_start..window_max_start per update,
    seeded by (seed, update); Flow-GRPO-Fast's own range (0, N/2) is window_max_start = num_steps // 2 - 1)."""
    window_min_start: int = Field(0, ge=0)
    window_max_start: int | None = None
    """Last window start, for both strategies; None = the last legal start num_steps - 1 - window_size."""
    window_iters_per_shift: int = Field(1, ge=1)
    """`progressive` only: updates between two moves of the window (MixGRPO's `iters_per_group`)."""
    window_stride: int = Field(1, ge=1)
    """`progressive` only: steps the window moves each time (MixGRPO's `prog_overlap_step`)."""
    window_roll_back: bool = False
    """`progressive` only: return to window_min_start after the last start instead of staying there (MixGRPO's
    `roll_back`)."""
    guidance_scale: float = Field(2.5, ge=0)
    """Embedded guidance during rollouts and log-prob recomputation (no true CFG, as Flow-GRPO's Kontext recipe)."""
    rollout_batch_size: int | None = Field(None, ge=1)
    """Members per transformer call in rollouts and in the update (same chunks keep the ratio exactly 1); None =
    all members of the process's share in one call."""

    # --- objective (the paper's clipped objective with KL; Flow-GRPO's defaults)
    clip_range: float = Field(1e-4, gt=0)
    """PPO ratio clip epsilon (not stated; Flow-GRPO default 1e-4)."""
    adv_clip: float = Field(5.0, gt=0)
    """Advantages are clamped to ±adv_clip (Flow-GRPO)."""
    adv_std: Literal["group", "batch"] = "group"
    """Advantage denominator: per-group std (paper) or the std of all rewards of the update (Flow-GRPO default)."""
    adv_eps: float = Field(1e-4, gt=0)
    """Added to the std in the advantage denominator."""
    kl_coef: float = Field(0.0, ge=0)
    """beta of the KL to the LoRA-disabled base model (not stated; Flow-GRPO Kontext uses 0). 0 skips that pass."""
    kl_form: Literal["flow-grpo", "exact"] = "flow-grpo"
    """How the per-step KL is normalised: `flow-grpo` = mean (mu - mu_ref)² / (2·std_dev_t²), Flow-GRPO's form, so
    beta values from the literature carry over; `exact` = the exact Gaussian KL, / (2·s²) with s² = std_dev_t²·|dt|
    (1/|dt| times stronger: 6-36x over the 12 paper steps)."""

    # --- optimisation (Flow-GRPO's defaults)
    learning_rate: float = Field(3e-4, gt=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    adam_eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    lr_warmup_updates: int = Field(0, ge=0)
    """Linear warm-up updates, then a constant learning rate."""
    samples_per_update: int = Field(1, ge=1)
    """Conditions (groups) whose gradients are accumulated into one optimiser step."""
    num_inner_epochs: int = Field(1, ge=1)
    """Passes over the same rollouts per update (1 = on-policy; the ratio then starts at exactly 1)."""
    num_epochs: int = Field(1, ge=1)
    """Epochs over the manifest's samples (paper: 1 over 1,319 samples); `max_updates` caps it."""
    max_updates: int | None = Field(None, ge=1)
    """Stop after this many optimiser updates (None: run all epochs)."""

    base_transformer_file: str | None = None
    """Transformer weights the policy starts from and the anchors are edited with. None = `editor.model`'s own
    (base FLUX.1-Kontext, as the paper trains); `editor.transformer_file` and `editor.lora` (e.g. the released
    RL3DEdit weights used for editing) are deliberately not applied to training."""

    # --- LoRA (the paper: rank 32, alpha 32)
    lora_rank: int = Field(32, ge=1)
    lora_alpha: float = Field(32.0, gt=0)
    lora_targets: list[str] | None = None
    """Target module names; None = the 13 Kontext modules (`editor.KONTEXT_LORA_TARGETS`)."""
    lora_init_seed: int = 0

    # --- EMA (Flow-GRPO's)
    ema: bool = True
    ema_decay: float = Field(0.9, ge=0, lt=1)
    ema_interval: int = Field(8, ge=1)
    """EMA update every ema_interval optimiser updates; decay = min((1+n)/(10+n), ema_decay)."""

    # --- devices
    mixed_precision: Literal["no", "bf16"] = "no"
    """accelerate autocast of the transformer forward, the same context for the rollouts and the update (so the
    first ratio is exactly 1), on GPU and CPU alike; SDE math stays fp32. fp16 is not offered: it would need a
    gradient scaler, and Flow-GRPO reports fp16 cannot produce valid FLUX images."""
    gradient_checkpointing: bool = False

    # --- data, logging, checkpoints
    manifest: str | None = None
    """Training manifest YAML; None = the built-in synthetic manifest (prepared on the fly into the run folder)."""
    max_consecutive_failed_groups: int = Field(3, ge=1)
    """A group whose candidates all fail to score is skipped (warning, `groups/failed` counter); after this many
    consecutive failed groups the run writes a checkpoint and stops with an error."""
    checkpoint_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(1, ge=1)
    image_every: int = Field(10, ge=1)
    """Sample grids go to TensorBoard every this many updates."""
    prepare_num_steps: int | None = Field(None, ge=1)
    """Steps of the offline single-view anchor edits; None = editor.num_steps."""

    @model_validator(mode="after")
    def _check(self) -> "RLConfig":
        last = self.num_steps - 1 - self.window_size
        if last < 0:
            raise ValueError(f"rl.window_size={self.window_size} does not fit rl.num_steps={self.num_steps}: the "
                             f"window must leave the final sigma->0 step untrained (window_size <= num_steps - 1)")
        if self.window_min_start > last:
            raise ValueError(f"rl.window_min_start={self.window_min_start} exceeds the last legal start {last} for "
                             f"num_steps={self.num_steps}, window_size={self.window_size}")
        if self.window_max_start is not None and not self.window_min_start <= self.window_max_start <= last:
            raise ValueError(f"rl.window_max_start={self.window_max_start} must lie in "
                             f"{self.window_min_start}..{last}")
        if self.rollout_batch_size is not None and self.rollout_batch_size > self.group_size:
            raise ValueError(f"rl.rollout_batch_size={self.rollout_batch_size} exceeds rl.group_size={self.group_size}")
        return self

"""3DGS fitting and refitting settings (defaults: gsplat's simple_trainer, docs/references.md §5)."""

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ReconConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fit_iters: int = Field(3000, ge=1)
    """Iterations of a base fit from a capture."""
    refit_iters: int = Field(3000, ge=1)
    """Iterations of the warm-started refit on the edited views (the paper: 3,000)."""
    ssim_weight: float = Field(0.2, ge=0.0, le=1.0)
    """lambda in (1 - lambda) * L1 + lambda * (1 - SSIM)."""
    views_per_step: int = Field(1, ge=1)
    """Training views rendered per iteration (gsplat's batch_size; learning rates are scaled by its square root)."""

    # Initialisation.
    sh_degree: int = Field(0, ge=0, le=3)
    """Highest SH degree of a base fit; bands are switched on one at a time every `sh_degree_interval` steps."""
    sh_degree_interval: int = Field(1000, ge=1)
    """Steps between SH band increases (gsplat: 1000)."""
    init_opacity: float = Field(0.1, gt=0.0, lt=1.0)
    """Initial opacity of every Gaussian (gsplat: 0.1)."""
    init_scale: float = Field(1.0, gt=0.0)
    """Initial scale as a multiple of the mean distance to the 3 nearest neighbours (gsplat: 1.0)."""
    max_init_points: int = Field(100_000, ge=1)
    """SfM points beyond this count are subsampled (seeded) before the fit."""
    random_init_points: int = Field(10_000, ge=1)
    """Gaussians placed at random inside the cameras' view frustums when the capture has no SfM points."""

    # Learning rates (Adam, eps 1e-15).
    lr_means: float = Field(1.6e-4, gt=0.0)
    """Means learning rate per unit of scene extent; decays exponentially to `lr_means_final_ratio` of it."""
    lr_means_final_ratio: float = Field(0.01, gt=0.0, le=1.0)
    """Final / initial means learning rate at the last iteration (gsplat: 0.01)."""
    lr_scales: float = Field(5e-3, gt=0.0)
    """Log-scale learning rate."""
    lr_quats: float = Field(1e-3, gt=0.0)
    """Quaternion learning rate."""
    lr_opacities: float = Field(5e-2, gt=0.0)
    """Opacity-logit learning rate."""
    lr_sh0: float = Field(2.5e-3, gt=0.0)
    """Degree-0 SH learning rate; higher bands use lr_sh0 / 20."""

    # Densification (CPU: prune + clone/split; CUDA: gsplat DefaultStrategy with the same thresholds).
    densify: bool = True
    """Grow and prune Gaussians during a base fit."""
    refine_start_iter: int = Field(500, ge=0)
    """First iteration at which Gaussians are grown or pruned."""
    refine_stop_iter: int = Field(15_000, ge=0)
    """Last iteration at which Gaussians are grown or pruned."""
    refine_every: int = Field(100, ge=1)
    """Iterations between refinements."""
    grow_grad2d: float = Field(2e-4, gt=0.0)
    """Mean screen-space gradient norm (NDC units) above which a Gaussian is cloned (small) or split (large)."""
    grow_scale3d: float = Field(0.01, gt=0.0)
    """Largest scale, as a fraction of the scene extent, below which a growing Gaussian is cloned, not split."""
    prune_opacity: float = Field(0.005, gt=0.0, lt=1.0)
    """Gaussians less opaque than this are removed."""
    prune_scale3d: float = Field(0.1, gt=0.0)
    """Gaussians larger than this fraction of the scene extent are removed (after the first opacity reset)."""
    reset_every: int = Field(3000, ge=1)
    """Iterations between opacity resets (to 2 x prune_opacity)."""
    max_gaussians: int = Field(200_000, ge=1)
    """Growth stops at this many Gaussians (a CPU memory and time budget; the CPU strategy only, gsplat has no cap)."""

    # Refit (warm start on edited views).
    refit_geometry_lr_scale: float = Field(1.0, gt=0.0, le=1.0)
    """Factor on the means, scales and quats learning rates during a refit (1: the paper's default schedules; 0.1
    made edits land less well without reducing drift, benchmarks/RESULTS.md)."""
    refit_anchor_weight: float = Field(1.0, ge=0.0)
    """Weight of the mean squared deviation of the geometry (means / extent, log-scales, quats) from the source."""
    refit_densify: bool = False
    """Grow and prune during a refit (off: the Gaussians of untouched regions stay where they were)."""
    refit_color_init_iters: int = Field(3, ge=0)
    """Closed-form colour passes before the first gradient step of a refit (ours, not the paper's): each moves every
    Gaussian's DC colour by the render-weight-weighted mean residual (edited view - current render) of the pixels it
    covers, across all edited views (0: off). Measured on a real capture: a recolour lands in 100 steps instead of
    > 3,000 (benchmarks/RESULTS.md, oracle refit)."""
    refit_appearance_lr_scale: float = Field(1.0, gt=0.0)
    """Factor on the colour (sh0, shN) and opacity learning rates during a refit."""
    refit_views_per_step: int | None = Field(None, ge=0)
    """Edited views rendered per refit step: None follows `views_per_step`, 0 uses all of them."""

    eval_every: int = Field(100, ge=1)
    """Iterations between held-out evaluations recorded in the fit history."""

    @model_validator(mode="after")
    def _check_refine_window(self) -> "ReconConfig":
        if self.refine_stop_iter < self.refine_start_iter:
            raise ValueError(
                f"recon.refine_stop_iter ({self.refine_stop_iter}) must be >= recon.refine_start_iter "
                f"({self.refine_start_iter})"
            )
        return self

"""rl3dedit.recon: fit a 3DGS scene to posed images (`fit`), refit it to edited views (`refit`), PSNR/SSIM."""

from rl3dedit.recon.config import ReconConfig
from rl3dedit.recon.fit import FitResult, fit, holdout_split
from rl3dedit.recon.init import knn_distances, scene_extent
from rl3dedit.recon.loop import FitStep
from rl3dedit.recon.metrics import photometric_loss, psnr, ssim, ssim_map
from rl3dedit.recon.refit import closed_form_colors, contribution_sums, refit

__all__ = [
    "FitResult",
    "FitStep",
    "ReconConfig",
    "closed_form_colors",
    "contribution_sums",
    "fit",
    "holdout_split",
    "knn_distances",
    "photometric_loss",
    "psnr",
    "refit",
    "scene_extent",
    "ssim",
    "ssim_map",
]

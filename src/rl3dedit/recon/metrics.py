"""Image-fidelity measures and the 3DGS photometric loss.

- PSNR = 10 log10(1 / MSE) for images in [0, 1].
- SSIM (Wang et al. 2004, "Image quality assessment: from error visibility to structural similarity", Eq. 13):
  local means, variances and covariance under an 11x11 Gaussian window (sigma 1.5), C1 = (0.01)^2,
  C2 = (0.03)^2, averaged over the valid (unpadded) window positions and the colour channels.
- 3DGS loss (Kerbl et al. 2023, Eq. 7; gsplat simple_trainer): (1 - lambda) L1 + lambda (1 - SSIM), lambda = 0.2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = 0.01**2
_C2 = 0.03**2


def _as_batch(image: Tensor, name: str) -> Tensor:
    if image.ndim == 3:
        return image[None]
    if image.ndim == 4:
        return image
    raise ValueError(f"{name} must be (3, H, W) or (V, 3, H, W), got shape {tuple(image.shape)}")


def _check_pair(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)} but target has shape {tuple(target.shape)}")
    return _as_batch(pred, "pred"), _as_batch(target, "target")


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB of images in [0, 1], averaged over views.

    Args:
        pred, target: (3, H, W) or (V, 3, H, W) in [0, 1].
    Returns:
        Scalar tensor: the mean over views of 10 log10(1 / MSE_v) (MSE floored at 1e-10, i.e. at most 100 dB).
    """
    pred, target = _check_pair(pred, target)
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (-10.0 * torch.log10(mse)).mean()


def _gaussian_kernel(size: int, sigma: float, like: Tensor) -> Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _blur(x: Tensor, kernel: Tensor) -> Tensor:
    """Separable valid-mode Gaussian filter of (B, C, H, W) per channel -> (B, C, H - k + 1, W - k + 1)."""
    channels, size = x.shape[1], kernel.numel()
    horizontal = kernel.view(1, 1, 1, size).expand(channels, 1, 1, size)
    vertical = kernel.view(1, 1, size, 1).expand(channels, 1, size, 1)
    return F.conv2d(F.conv2d(x, horizontal, groups=channels), vertical, groups=channels)


def ssim_map(pred: Tensor, target: Tensor, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Eq. 13) of (V, 3, H, W) images -> (V, 3, H - window + 1, W - window + 1)."""
    pred, target = _check_pair(pred, target)
    height, width = pred.shape[-2:]
    if height < window or width < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {width}x{height}")
    pred, target = pred.float(), target.float()
    kernel = _gaussian_kernel(window, sigma, pred)
    mu_p, mu_t = _blur(pred, kernel), _blur(target, kernel)
    var_p = _blur(pred * pred, kernel) - mu_p**2
    var_t = _blur(target * target, kernel) - mu_t**2
    cov = _blur(pred * target, kernel) - mu_p * mu_t
    numerator = (2 * mu_p * mu_t + _C1) * (2 * cov + _C2)
    denominator = (mu_p**2 + mu_t**2 + _C1) * (var_p + var_t + _C2)
    return numerator / denominator


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Structural similarity of images in [0, 1] with an 11x11 Gaussian window (sigma 1.5), mean over views.

    Args:
        pred, target: (3, H, W) or (V, 3, H, W) in [0, 1], H and W >= 11.
    Returns:
        Scalar tensor in [-1, 1]; exactly 1 for identical images. Differentiable.
    """
    return ssim_map(pred, target).flatten(1).mean(1).mean()


def photometric_loss(pred: Tensor, target: Tensor, ssim_weight: float) -> Tensor:
    """The 3DGS training loss (1 - lambda) L1 + lambda (1 - SSIM) of (V, 3, H, W) images; scalar tensor."""
    l1 = (pred - target).abs().mean()
    if ssim_weight == 0.0:
        return l1
    return (1.0 - ssim_weight) * l1 + ssim_weight * (1.0 - ssim(pred, target))

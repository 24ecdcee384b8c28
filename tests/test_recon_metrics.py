"""PSNR, SSIM and the 3DGS photometric loss (rl3dedit.recon.metrics)."""

import math

import pytest
import torch

from rl3dedit.recon import photometric_loss, psnr, ssim, ssim_map


def _image(seed: int = 0, size: int = 24) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(2, 3, size + 4, size + 4, generator=generator), 5, stride=1)
    return smooth.clamp(0, 1)


def _ssim_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM by explicit 11x11 windows in float64 (Wang et al. 2004, Eq. 13), for comparison."""
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    w = torch.outer(g, g) / torch.outer(g, g).sum()
    a, b = a.double(), b.double()
    values = []
    for v in range(a.shape[0]):
        for c in range(3):
            for i in range(a.shape[2] - 10):
                for j in range(a.shape[3] - 10):
                    pa, pb = a[v, c, i : i + 11, j : j + 11], b[v, c, i : i + 11, j : j + 11]
                    ma, mb = (w * pa).sum(), (w * pb).sum()
                    va, vb = (w * pa * pa).sum() - ma**2, (w * pb * pb).sum() - mb**2
                    cov = (w * pa * pb).sum() - ma * mb
                    values.append(((2 * ma * mb + 1e-4) * (2 * cov + 9e-4)) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    return float(torch.stack(values).mean())


def test_ssim_of_identical_images_is_one() -> None:
    image = _image()
    assert float(ssim(image, image)) == pytest.approx(1.0, abs=1e-6)
    assert float(ssim(image[0], image[0])) == pytest.approx(1.0, abs=1e-6)


def test_ssim_falls_with_noise() -> None:
    image = _image()
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(image.shape, generator=generator)
    scores = [float(ssim((image + sigma * noise).clamp(0, 1), image)) for sigma in (0.0, 0.02, 0.1, 0.3)]
    assert all(later < earlier for earlier, later in zip(scores, scores[1:])), scores
    assert scores[-1] < 0.5


def test_ssim_matches_explicit_windows() -> None:
    a = _image(0, 14)
    b = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert float(ssim(a, b)) == pytest.approx(_ssim_reference(a, b), abs=1e-5)
    assert ssim_map(a, b).shape == (2, 3, 4, 4)


def test_psnr_known_value_and_identical_cap() -> None:
    target = torch.full((3, 8, 8), 0.5)
    assert float(psnr(target + 0.1, target)) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert float(psnr(target, target)) == pytest.approx(100.0)
    stack = torch.stack([target + 0.1, target + 0.01])
    assert float(psnr(stack, torch.stack([target, target]))) == pytest.approx((20.0 + 40.0) / 2, abs=1e-3)


def test_loss_is_differentiable_and_mixes_terms() -> None:
    target = _image()
    pred = (target + 0.05).clamp(0, 1).requires_grad_()
    loss = photometric_loss(pred, target, 0.2)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    l1 = float((pred.detach() - target).abs().mean())
    assert loss.item() == pytest.approx(0.8 * l1 + 0.2 * (1 - float(ssim(pred.detach(), target))), rel=1e-5)
    assert photometric_loss(pred, target, 0.0).item() == pytest.approx(l1)


def test_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"pred has shape \(3, 8, 8\) but target has shape \(3, 8, 9\)"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(V, 3, H, W\)"):
        psnr(torch.zeros(8, 8), torch.zeros(8, 8))
    assert not math.isnan(float(ssim(torch.zeros(3, 11, 11), torch.zeros(3, 11, 11))))

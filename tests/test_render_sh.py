"""SH evaluation against the complex spherical harmonics of scipy (an independent formula)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import torch

from rl3dedit.render._sh import sh_basis, sh_to_color


def _inria_basis_from_scipy(degree: int, direction: np.ndarray) -> np.ndarray:
    """sqrt(2) Im(Y_l^|m|) for m < 0, Y_l^0, sqrt(2) Re(Y_l^m) for m > 0 (Condon-Shortley phase kept)."""
    x, y, z = direction
    polar, azimuth = np.arccos(z), np.arctan2(y, x)
    values = []
    for l in range(degree + 1):
        for m in range(-l, l + 1):
            ylm = scipy.special.sph_harm_y(l, abs(m), polar, azimuth)
            values.append(np.sqrt(2) * ylm.imag if m < 0 else (ylm.real if m == 0 else np.sqrt(2) * ylm.real))
    return np.array(values)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_basis_matches_complex_harmonics(degree: int) -> None:
    direction = np.array([0.3, -0.5, 0.81])
    direction /= np.linalg.norm(direction)
    ours = sh_basis(degree, torch.tensor(direction, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, _inria_basis_from_scipy(degree, direction), atol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_sh_to_color_direct_formula(degree: int) -> None:
    gen = torch.Generator().manual_seed(degree)
    coeffs = torch.randn(16, 3, generator=gen, dtype=torch.float64) * 0.3
    raw_dir = np.array([-1.0, 2.0, 0.5])  # not normalised: sh_to_color normalises
    expected = _inria_basis_from_scipy(degree, raw_dir / np.linalg.norm(raw_dir)) @ coeffs[: (degree + 1) ** 2].numpy()
    got = sh_to_color(degree, torch.tensor(raw_dir), coeffs)
    np.testing.assert_allclose(got.numpy(), np.maximum(expected + 0.5, 0.0), atol=1e-12)


def test_sh_to_color_clamps_below_and_checks_coefficient_count() -> None:
    coeffs = torch.zeros(4, 3)
    coeffs[0] = -10.0  # DC far below -0.5 / C0
    assert torch.equal(sh_to_color(1, torch.tensor([0.0, 0.0, 1.0]), coeffs), torch.zeros(3))
    with pytest.raises(ValueError, match="needs 9 SH coefficients"):
        sh_to_color(2, torch.tensor([0.0, 0.0, 1.0]), coeffs)

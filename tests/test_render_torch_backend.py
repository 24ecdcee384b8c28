"""Our PyTorch rasterizer: analytic footprint, brute-force parity, compositing rules, float64 gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from rl3dedit.render import _torch_backend, rasterize


def _camera(focal: float, cx: float, cy: float, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """One identity-pose camera: viewmats (1, 4, 4), Ks (1, 3, 3)."""
    K = torch.tensor([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]], dtype=dtype)
    return torch.eye(4, dtype=dtype)[None], K[None]


def _identity_quats(n: int, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=dtype).repeat(n, 1)


def test_single_isotropic_gaussian_matches_analytic_footprint() -> None:
    focal, z, s, opacity = 40.0, 4.0, 0.2, 0.9
    cx, cy = 10.5, 13.5  # the centre projects onto the centre of pixel (10, 13)
    viewmats, Ks = _camera(focal, cx, cy)
    means = torch.tensor([[0.0, 0.0, z]], dtype=torch.float64)
    _, alphas, meta = rasterize(
        means, _identity_quats(1), torch.full((1, 3), s, dtype=torch.float64),
        torch.tensor([opacity], dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64),
        viewmats, Ks, 40, 30, backend="torch",
    )
    ys, xs = torch.meshgrid(torch.arange(30, dtype=torch.float64), torch.arange(40, dtype=torch.float64),
                            indexing="ij")
    r2 = (xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2
    var = (focal * s / z) ** 2 + 0.3
    analytic = opacity * torch.exp(-r2 / (2 * var))
    rendered = alphas[0, ..., 0]
    assert rendered[13, 10] == pytest.approx(opacity, abs=1e-12)
    # Every pixel the Gaussian reaches (alpha > 1/255, also beyond 3 sigma) gets the exact footprint, whatever its
    # tile; every other pixel gets nothing.
    reach = analytic > 1 / 255
    assert (reach & (r2 > 9 * var)).sum() > 10
    torch.testing.assert_close(rendered[reach], analytic[reach], atol=1e-12, rtol=0)
    assert torch.all(rendered[~reach] == 0)
    assert meta["means2d"][0, 0].tolist() == [cx, cy]
    # gsplat's opacity-aware radius: the Mahalanobis distance where 0.9 exp(-k^2 / 2) = 1/255.
    assert int(meta["radii"][0, 0]) == math.ceil(math.sqrt(2 * math.log(255 * opacity)) * math.sqrt(var))


def _brute_force(means2d, conics, opacities, colors, depths, width, height):
    """Every Gaussian at every pixel, globally depth-sorted (opacity-aware boxes hold every pixel with alpha >= 1/255)."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means2d.dtype), torch.arange(width, dtype=means2d.dtype),
                            indexing="ij")
    pix = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2) + 0.5
    order = torch.argsort(depths)
    d = pix - means2d[order][None]
    a, b, c = conics[order].unbind(-1)
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
    alpha = (opacities[order] * torch.exp(-sigma)).clamp_max(_torch_backend.ALPHA_MAX)
    alpha = torch.where(alpha >= 1 / 255, alpha, torch.zeros_like(alpha))
    out = torch.zeros(pix.shape[0], colors.shape[-1], dtype=means2d.dtype)
    trans = torch.ones(pix.shape[0], dtype=means2d.dtype)
    for i in range(alpha.shape[1]):  # reference only: a plain loop over Gaussians
        next_t = trans * (1 - alpha[:, i])
        live = next_t > 1e-4
        out += torch.where(live, alpha[:, i] * trans, 0)[:, None] * colors[order][i]
        trans = torch.where(live, next_t, trans)
        alpha[~live, i + 1 :] = 0  # a stopped pixel takes nothing more
    return out.reshape(height, width, -1), trans.reshape(height, width, 1)


@pytest.mark.parametrize("chunk_elements", [1 << 21, 1 << 12])
def test_matches_brute_force_compositing(monkeypatch: pytest.MonkeyPatch, chunk_elements: int) -> None:
    monkeypatch.setattr(_torch_backend, "CHUNK_ELEMENTS", chunk_elements)
    gen = torch.Generator().manual_seed(3)
    n, width, height = 150, 40, 24  # not multiples of the 16-px tile
    means = torch.cat([torch.rand(n, 2, generator=gen) * 2 - 1, torch.rand(n, 1, generator=gen) * 2 + 2], -1)
    means = means.double()
    quats = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    scales = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 0.15 + 0.01
    # Opacities up to 0.95: tile culling is exact at any opacity, so brute force agrees.
    opacities = torch.rand(n, generator=gen, dtype=torch.float64) * 0.95
    colors = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    viewmats, Ks = _camera(20.0, 20.0, 12.0)
    out, alphas, meta = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                                  render_mode="RGB+D", backend="torch")
    features = torch.cat([colors, meta["depths"][0, :, None]], dim=-1)
    vis = meta["radii"][0] > 0
    ref, ref_t = _brute_force(meta["means2d"][0][vis], meta["conics"][0][vis], opacities[vis], features[vis],
                              meta["depths"][0][vis], width, height)
    torch.testing.assert_close(out[0], ref, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(alphas[0], 1 - ref_t, atol=1e-10, rtol=1e-10)


def test_transmittance_stops_before_the_gaussian_that_would_end_it() -> None:
    # Opacities 0.99, 0.98, 0.99 front to back: T goes 1 -> 0.01 -> 2e-4, and the third would take it to
    # 2e-6 <= 1e-4, so it is never composited (a red, green, blue stack shows no blue).
    viewmats, Ks = _camera(10.0, 4.5, 4.5)  # centres project onto the centre of pixel (4, 4)
    means = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    colors = torch.eye(3, dtype=torch.float64)
    opacities = torch.tensor([0.99, 0.98, 0.99], dtype=torch.float64)
    out, alphas, _ = rasterize(means, _identity_quats(3), torch.full((3, 3), 1.0, dtype=torch.float64),
                               opacities, colors, viewmats, Ks, 8, 8, backend="torch")
    torch.testing.assert_close(out[0, 4, 4], torch.tensor([0.99, 0.01 * 0.98, 0.0], dtype=torch.float64))
    assert float(alphas[0, 4, 4, 0]) == pytest.approx(1 - 0.01 * 0.02, abs=1e-12)


def _gradcheck_inputs() -> tuple[torch.Tensor, ...]:
    """Three large, semi-transparent Gaussians at distinct depths covering an 8x8 image (one tile).

    Placed away from every non-differentiable threshold: alpha stays in (1/255, 0.999) at every pixel, T stays
    far above 1e-4, the depth order and the tile assignment do not change under small perturbations.
    """
    gen = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.1, -0.05, 2.0], [-0.1, 0.1, 2.6], [0.05, 0.1, 3.1]], dtype=torch.float64)
    quats = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    scales = torch.tensor([[0.3, 0.2, 0.25], [0.25, 0.35, 0.2], [0.4, 0.3, 0.3]], dtype=torch.float64)
    opacities = torch.tensor([0.6, 0.5, 0.7], dtype=torch.float64)
    return means, quats, scales, opacities


def test_gradcheck_rgb_colors() -> None:
    means, quats, scales, opacities = _gradcheck_inputs()
    colors = torch.rand(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    viewmats, Ks = _camera(8.0, 4.0, 4.0)
    bg = torch.tensor([[0.2, 0.4, 0.6]], dtype=torch.float64)

    def fn(m, q, s, o, c):
        out, alphas, _ = rasterize(m, q, s, o, c, viewmats, Ks, 8, 8, backgrounds=bg, backend="torch")
        return out, alphas

    inputs = tuple(t.clone().requires_grad_(True) for t in (means, quats, scales, opacities, colors))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_gradcheck_sh_and_expected_depth() -> None:
    means, quats, scales, opacities = _gradcheck_inputs()
    sh = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.2
    viewmats, Ks = _camera(8.0, 4.0, 4.0)

    def fn(m, q, s, o, c):
        return rasterize(m, q, s, o, c, viewmats, Ks, 8, 8, sh_degree=1, render_mode="RGB+ED", backend="torch")[0]

    inputs = tuple(t.clone().requires_grad_(True) for t in (means, quats, scales, opacities, sh))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def _dense_reference(proj, opacities: torch.Tensor, colors: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Every Gaussian at every pixel by plain autograd: clamp, skip and stop masks are constants (no_grad)."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=colors.dtype), torch.arange(width, dtype=colors.dtype),
                            indexing="ij")
    pix = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2) + 0.5
    order = torch.argsort(proj.depths[0].detach())
    d = pix - proj.means2d[0][order][None]
    a, b, c = proj.conics[0][order].unbind(-1)
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
    alpha = (opacities[order] * torch.exp(-sigma)).clamp_max(_torch_backend.ALPHA_MAX)
    alpha = alpha * (alpha >= 1 / 255).to(alpha.dtype)
    log_t = torch.cumsum(torch.log1p(-alpha), dim=-1)
    alpha = alpha * (log_t > math.log(1e-4)).to(alpha.dtype).detach()
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], dim=1), dim=1)
    return ((alpha * trans) @ colors[order]).reshape(height, width, -1)


def test_backward_with_clamped_and_stopped_pixels_matches_autograd_reference() -> None:
    from rl3dedit.render._projection import covariance_3d, project_gaussians

    gen = torch.Generator().manual_seed(5)
    n, size = 8, 16
    # Large Gaussians covering the whole image (tile culling is a no-op), opacities 0.7-0.999 and one at 0.99999:
    # 3 pixel alphas hit the 0.999 clamp and 90 pixels stop early, so the hand-written compositing backward
    # is checked on every rule (no value lies within 1e-5 of a threshold).
    means = torch.cat([torch.randn(n, 2, generator=gen, dtype=torch.float64) * 0.2,
                       torch.linspace(2.0, 4.0, n, dtype=torch.float64)[:, None]], dim=-1)
    quats = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    scales = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 0.5 + 1.0
    opacities = torch.rand(n, generator=gen, dtype=torch.float64) * 0.3 + 0.699
    colors = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    opacities[3], scales[3] = 0.99999, 3.0  # clamped at 0.999 near its centre
    viewmats, Ks = _camera(16.0, 8.0, 8.0)
    weights = torch.rand(size, size, 3, generator=gen, dtype=torch.float64)
    grads = []
    for path in ("ours", "reference"):
        leaves = [t.clone().requires_grad_(True) for t in (means, quats, scales, opacities, colors)]
        if path == "ours":
            out = rasterize(*leaves, viewmats, Ks, size, size, backend="torch")[0][0]
        else:
            proj = project_gaussians(leaves[0], covariance_3d(leaves[1], leaves[2]), viewmats, Ks, size, size,
                                     0.01, 1e10, 0.3, 0.0)
            out = _dense_reference(proj, leaves[3], leaves[4], size, size)
        (out * weights).sum().backward()
        grads.append((out.detach(), [t.grad for t in leaves]))
    (ours, ours_grads), (ref, ref_grads) = grads
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)
    for name, g_ours, g_ref in zip(("means", "quats", "scales", "opacities", "colors"), ours_grads, ref_grads):
        torch.testing.assert_close(g_ours, g_ref, atol=1e-9, rtol=1e-7, msg=f"gradient of {name}")

"""gsplat on CPU: our rasterizer against gsplat's maths, and our gsplat backend's plumbing, through a stand-in.

`gsplat_standin.rasterization` runs gsplat's own PyTorch reference functions plus per-pixel compositing written
from gsplat's kernels (see that module). Skipped where gsplat is not installed.
"""

from __future__ import annotations

import logging
import math
import sys
import types

import pytest
import torch

import gsplat_standin
from rl3dedit.render import _contract, _gsplat_backend, rasterize, render
from rl3dedit.scene import Cameras, GaussianScene

gsplat_standin.reference()  # skips the module without gsplat


def _inputs(num_views: int, sh_degree: int | None, per_view: bool, seed: int = 0):
    """A float64 cloud of 90 Gaussians (10 near-opaque, so the 0.999 clamp and the 1e-4 stop bind) seen by
    cameras rotated about all three axes, at 37 x 21 pixels (partial 8- and 16-pixel tiles)."""
    gen = torch.Generator().manual_seed(seed)
    n, dt = 90, torch.float64
    means = (torch.rand(n, 3, generator=gen, dtype=dt) * 2 - 1) * torch.tensor([1.0, 0.6, 0.8], dtype=dt)
    quats = torch.randn(n, 4, generator=gen, dtype=dt)
    scales = torch.rand(n, 3, generator=gen, dtype=dt) * 0.2 + 0.02
    opacities = torch.rand(n, generator=gen, dtype=dt)
    opacities[:10] = 0.9999
    if sh_degree is None:
        colors = torch.rand(*((num_views,) if per_view else ()), n, 3, generator=gen, dtype=dt)
    else:
        colors = torch.randn(*((num_views,) if per_view else ()), n, 16, 3, generator=gen, dtype=dt) * 0.3
    angles = torch.rand(num_views, 3, generator=gen, dtype=dt) * 0.6 - 0.3
    viewmats = torch.eye(4, dtype=dt).repeat(num_views, 1, 1)
    for v, (rx, ry, rz) in enumerate(angles.tolist()):
        cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
        rot_x = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=dt)
        rot_y = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=dt)
        rot_z = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=dt)
        viewmats[v, :3, :3] = rot_z @ rot_y @ rot_x
        viewmats[v, :3, 3] = torch.tensor([0.1 * v, -0.05, 3.0], dtype=dt)
    Ks = torch.tensor([[24.0, 0.0, 18.5], [0.0, 26.0, 10.5], [0.0, 0.0, 1.0]], dtype=dt).repeat(num_views, 1, 1)
    backgrounds = torch.rand(num_views, 3, generator=gen, dtype=dt)
    return [means, quats, scales, opacities, colors], viewmats, Ks, backgrounds


@pytest.mark.parametrize(
    ("render_mode", "sh_degree", "num_views", "per_view"),
    [("RGB", 0, 1, False), ("RGB", 3, 3, False), ("RGB", None, 2, True), ("ED", None, 2, False),
     ("RGB+ED", 1, 2, True), ("RGB+ED", 2, 1, False)],
)
def test_torch_backend_matches_gsplat_maths(render_mode: str, sh_degree: int | None, num_views: int,
                                            per_view: bool) -> None:
    leaves, viewmats, Ks, backgrounds = _inputs(num_views, sh_degree, per_view)
    width, height = 37, 21
    channels = {"RGB": 3, "ED": 1, "RGB+ED": 4}[render_mode]
    weights = torch.rand(num_views, height, width, channels, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64)
    results = []
    for impl in ("ours", "gsplat"):
        params = [t.clone().requires_grad_(True) for t in leaves]
        kwargs = dict(sh_degree=sh_degree, render_mode=render_mode, backgrounds=backgrounds)
        if impl == "ours":
            colors, alphas, meta = rasterize(*params, viewmats, Ks, width, height, backend="torch", **kwargs)
            radii = meta["radii"]
        else:
            colors, alphas, meta = gsplat_standin.rasterization(*params, viewmats, Ks, width, height, packed=False,
                                                                **kwargs)
            radii = meta["radii"].max(dim=-1).values
        ((colors * weights).sum() + alphas.sum()).backward()
        results.append((colors.detach(), alphas.detach(), radii, [p.grad for p in params]))
    (ours, ours_alpha, ours_radii, ours_grads), (ref, ref_alpha, ref_radii, ref_grads) = results
    assert (ref_alpha > 0.998).any(), "some pixels are near-opaque"
    assert torch.equal(ours_radii, ref_radii.to(ours_radii.dtype))
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ours_alpha, ref_alpha, rtol=1e-9, atol=1e-9)
    for name, g_ours, g_ref in zip(("means", "quats", "scales", "opacities", "colors"), ours_grads, ref_grads):
        if render_mode == "ED" and name == "colors":
            assert g_ours is None or not g_ours.any()
            continue
        assert g_ref.abs().sum() > 0, name
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-9, msg=f"gradient of {name}")


def _scene() -> GaussianScene:
    leaves, viewmats, Ks, _ = _inputs(2, 3, False, seed=3)
    means, quats, scales, opacities, sh = (t.float() for t in leaves)
    return GaussianScene(means, quats, scales.log(), torch.logit(opacities.clamp_max(0.999)), sh[:, 0], sh[:, 1:])


def test_gsplat_backend_plumbing_runs_on_the_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    import gsplat

    monkeypatch.setattr(gsplat, "rasterization", gsplat_standin.rasterization)
    monkeypatch.setattr(_contract, "_choose_backend", lambda backend, device: backend)  # no CUDA needed
    _, viewmats, Ks, _ = _inputs(2, 3, False, seed=3)
    cameras = Cameras(viewmats.float(), Ks.float(), 37, 21)
    outs = {}
    for backend in ("torch", "gsplat"):
        scene = _scene()
        scene.means.requires_grad_(True)
        out = render(scene, cameras, mode="RGB+ED", background=(0.2, 0.3, 0.4), backend=backend)
        out.means2d.retain_grad()
        (out.rgb.sum() + out.depth.sum()).backward()
        outs[backend] = (out, scene.means.grad)
    (ours, ours_grad), (theirs, their_grad) = outs["torch"], outs["gsplat"]
    assert theirs.backend == "gsplat" and ours.backend == "torch"
    assert theirs.radii.shape == ours.radii.shape == (2, 90), "per-axis radii reduced to (V, N)"
    assert torch.equal(theirs.radii, ours.radii.to(theirs.radii.dtype))
    torch.testing.assert_close(theirs.rgb, ours.rgb, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(theirs.depth, ours.depth, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(theirs.means2d.grad, ours.means2d.grad, rtol=1e-3, atol=1e-6)
    # float32 sums in another order: compare the whole gradient (one element of 270 differs by 4e-5 at seed 3).
    assert float((their_grad - ours_grad).norm() / ours_grad.norm()) < 1e-4


def _fake_status(monkeypatch: pytest.MonkeyPatch, kernels: bool) -> _gsplat_backend.GsplatStatus:
    status = _gsplat_backend.GsplatStatus(True, "1.5.3", kernels, "" if kernels else "no kernels: install nvcc")
    monkeypatch.setattr(_gsplat_backend, "gsplat_status", lambda: status)
    monkeypatch.setattr(_contract, "gsplat_status", lambda: status)
    _gsplat_backend._warn_fallback.cache_clear()
    return status


def test_auto_falls_back_with_one_warning_and_explicit_gsplat_fails_clearly(monkeypatch, caplog) -> None:
    cuda = torch.device("cuda")
    _fake_status(monkeypatch, kernels=False)
    with caplog.at_level(logging.WARNING, logger="rl3dedit.render._gsplat_backend"):
        assert _contract._choose_backend("auto", cuda) == "torch"
        assert _contract._choose_backend("auto", cuda) == "torch"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "install nvcc" in warnings[0]
    with pytest.raises(RuntimeError, match="install nvcc"):
        _contract._choose_backend("gsplat", cuda)
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        _contract._choose_backend("gsplat", torch.device("cpu"))
    assert _contract._choose_backend("auto", torch.device("cpu")) == "torch"
    _fake_status(monkeypatch, kernels=True)
    assert _contract._choose_backend("auto", cuda) == "gsplat"
    assert _contract._choose_backend("gsplat", cuda) == "gsplat"


@pytest.mark.parametrize("backend_module", ["kernels_none", "import_fails"])
def test_gsplat_status_probes_the_kernels(monkeypatch: pytest.MonkeyPatch, backend_module: str) -> None:
    # gsplat without compiled kernels: its backend module either holds _C = None or fails to import.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    fake = types.ModuleType("gsplat.cuda._backend")
    fake._C = None
    monkeypatch.setitem(sys.modules, "gsplat.cuda._backend", fake if backend_module == "kernels_none" else None)
    _gsplat_backend.gsplat_status.cache_clear()
    try:
        status = _gsplat_backend.gsplat_status()
    finally:
        _gsplat_backend.gsplat_status.cache_clear()
    assert status.installed and not status.kernels
    assert "nvcc" in status.reason and "docs.gsplat.studio" in status.reason


def test_gsplat_status_without_cuda_does_not_import_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "gsplat.cuda._backend", None)  # an import attempt would raise
    _gsplat_backend.gsplat_status.cache_clear()
    try:
        status = _gsplat_backend.gsplat_status()
    finally:
        _gsplat_backend.gsplat_status.cache_clear()
    assert status.installed and not status.kernels and "no CUDA device" in status.reason

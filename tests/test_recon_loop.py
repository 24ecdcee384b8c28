"""The shared optimisation loop: anchor regulariser, view cycling, history (rl3dedit.recon.loop)."""

import math

import pytest
import torch

from rl3dedit.recon import ReconConfig
from rl3dedit.recon.densify import NoDensifier
from rl3dedit.recon.loop import Anchor, LoopSettings, Views, optimise
from rl3dedit.recon.optim import learning_rates, make_splats, select_rows
from rl3dedit.render import render
from rl3dedit.synthetic import make_synthetic_scene
from rl3dedit.views import orbit_cameras


def test_anchor_is_zero_at_the_source_and_grows_with_deviation() -> None:
    splats = make_splats(make_synthetic_scene(60, seed=0), learning_rates(ReconConfig(), 2.0), "cpu")
    anchor = Anchor({n: splats.params[n].detach().clone() for n in ("means", "scales")}, weight=3.0, extent=2.0)
    assert anchor.loss(splats).item() == 0.0
    with torch.no_grad():
        splats.params["means"] += 0.2  # 0.1 extents on each axis
    assert anchor.loss(splats).item() == pytest.approx(3.0 * 0.1**2, rel=1e-5)
    select_rows(splats, torch.arange(60) < 50)
    assert anchor.loss(splats) is None, "no anchor once the Gaussian set changed"


def test_optimise_cycles_views_and_records_history() -> None:
    scene = make_synthetic_scene(100, seed=0)
    cameras = orbit_cameras(3, center=(0.0, 0.0, 0.3), radius=2.7, elevation_deg=30.0, width=16, height=16, fov_deg=50.0)
    with torch.no_grad():
        images = render(scene, cameras, mode="RGB", background=(1.0, 1.0, 1.0)).rgb.clamp(0, 1)
    config = ReconConfig(eval_every=2, lr_sh0=0.05)
    rates = learning_rates(config, 2.0)
    splats = make_splats(scene.with_params(sh_dc=torch.zeros_like(scene.sh_dc)), rates, "cpu")
    settings = LoopSettings(iters=5, rates=rates, background=torch.ones(3), seed=0, max_sh_degree=0,
                            holdout=Views(cameras, images))
    optimise(splats, Views(cameras, images), config, settings, NoDensifier())
    assert [h.iteration for h in settings.history] == [0, 2, 4, 5]
    assert math.isnan(settings.history[0].loss)
    assert settings.history[-1].holdout_psnr > settings.history[0].holdout_psnr
    assert splats.optimizers["sh0"].state[splats.params["sh0"]]["step"] == 5

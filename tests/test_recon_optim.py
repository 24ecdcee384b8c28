"""Per-parameter Adam, learning rates and topology edits that keep Adam state (rl3dedit.recon.optim)."""

import pytest
import torch

from rl3dedit.recon import ReconConfig
from rl3dedit.recon.optim import append_rows, learning_rates, make_splats, means_lr, select_rows
from rl3dedit.synthetic import make_synthetic_scene


def _stepped_splats(n: int = 60):
    scene = make_synthetic_scene(n, seed=0)
    splats = make_splats(scene, learning_rates(ReconConfig(), extent=2.0), "cpu")
    loss = sum(p.pow(2).sum() for p in splats.params.values())
    loss.backward()
    splats.step()
    return splats


def test_learning_rates_follow_gsplat_and_scale() -> None:
    config = ReconConfig()
    rates = learning_rates(config, extent=3.0)
    assert rates["means"] == pytest.approx(1.6e-4 * 3.0)
    assert rates == pytest.approx({"means": 4.8e-4, "scales": 5e-3, "quats": 1e-3, "opacities": 5e-2,
                                   "sh0": 2.5e-3, "shN": 2.5e-3 / 20})
    slow = learning_rates(config, extent=3.0, geometry_scale=0.1)
    assert slow["means"] == pytest.approx(4.8e-5) and slow["sh0"] == rates["sh0"]
    batched = learning_rates(ReconConfig(views_per_step=4), extent=3.0)
    assert batched["scales"] == pytest.approx(2 * 5e-3)
    assert means_lr(1.0, 0.01, 0, 100) == 1.0 and means_lr(1.0, 0.01, 100, 100) == pytest.approx(0.01)
    assert means_lr(1.0, 0.01, 50, 100) == pytest.approx(0.1)


def test_scene_round_trip_and_independence() -> None:
    scene = make_synthetic_scene(60, seed=0)
    splats = make_splats(scene, learning_rates(ReconConfig(), 1.0), "cpu")
    assert torch.equal(splats.scene().means, scene.means)
    with torch.no_grad():
        splats.params["means"] += 1.0
    assert not torch.equal(splats.scene().means, scene.means), "parameters are copies of the source scene"
    assert splats.detached_scene().means.requires_grad is False


def test_select_and_append_keep_adam_moments() -> None:
    splats = _stepped_splats()
    before = {name: opt.state[splats.params[name]]["exp_avg"].clone() for name, opt in splats.optimizers.items()}
    keep = torch.arange(60) % 3 != 0
    select_rows(splats, keep)
    assert splats.num_gaussians == 40
    for name, opt in splats.optimizers.items():
        state = opt.state[splats.params[name]]
        assert torch.equal(state["exp_avg"], before[name][keep]), name
        assert opt.param_groups[0]["params"][0] is splats.params[name]
    append_rows(splats, {name: p.data[:5].clone() for name, p in splats.params.items()})
    assert splats.num_gaussians == 45
    state = splats.optimizers["means"].state[splats.params["means"]]
    assert state["exp_avg"].shape == (45, 3) and state["exp_avg"][40:].abs().sum() == 0
    splats.scene()  # shapes still agree
    loss = splats.params["sh0"].sum()
    loss.backward()
    splats.step()  # the edited optimizer still steps


def test_step_scene_skips_validation_and_the_result_is_checked(monkeypatch) -> None:
    from rl3dedit.scene import GaussianScene

    splats = make_splats(make_synthetic_scene(60, seed=0), learning_rates(ReconConfig(), 2.0), "cpu")
    calls = []
    monkeypatch.setattr(GaussianScene, "validate", lambda self, source="GaussianScene": calls.append(source))
    scene = splats.scene()  # every optimisation step: no per-field host syncs
    assert calls == [] and scene.means is splats.params["means"]
    splats.detached_scene()  # leaving the optimiser: checked
    assert calls == ["GaussianScene"]
    with pytest.raises(TypeError, match="needs exactly"):
        GaussianScene.unchecked(means=scene.means)

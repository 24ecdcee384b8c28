"""Case scenes: synthetic and .ply scenes load; a capture's base 3DGS is fitted once and reused; errors name
the case."""

from pathlib import Path

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.eval.cases import load_cases
from rl3dedit.eval.scenes import load_case_scene

CASE = """
  - id: {id}
    split: in_distribution
    scene: {scene}
    instruction: make it blue
    source_caption: a thing
    target_caption: a blue thing
"""


def _cases(tmp_path: Path, *entries: tuple[str, str], data_root: Path | None = None):
    path = tmp_path / "cases.yaml"
    path.write_text("cases:" + "".join(CASE.format(id=i, scene=s) for i, s in entries))
    return load_cases(path, data_root=data_root)


def test_synthetic_and_ply_scenes(tmp_path):
    from rl3dedit.scene import write_ply

    config = load_config("tiny")
    cases = _cases(tmp_path, ("syn", "{kind: synthetic, num_views: 10, size: 32, seed: 3}"),
                   ("ply", "{kind: ply, ply: s.ply, cameras: missing.json}"))
    syn = load_case_scene(cases.cases[0], cases, config, cache_dir=tmp_path / "scenes", device=torch.device("cpu"))
    assert len(syn.cameras) == 10 and syn.cameras.width == 32 and "seed=3" in syn.description
    write_ply(syn.scene, tmp_path / "s.ply")
    with pytest.raises(FileNotFoundError, match=r"case 'ply': scene.cameras .*missing.json does not exist"):
        load_case_scene(cases.cases[1], cases, config, cache_dir=tmp_path / "scenes", device=torch.device("cpu"))


def test_missing_capture_names_the_data_root(tmp_path):
    cases = _cases(tmp_path, ("cap", "{kind: capture, path: nowhere}"), data_root=tmp_path / "root")
    with pytest.raises(FileNotFoundError, match=r"case 'cap': capture folder .*nowhere does not exist; pass --data-root"):
        load_case_scene(cases.cases[0], cases, load_config("tiny"), cache_dir=tmp_path, device=torch.device("cpu"))


def test_capture_base_fit_is_cached(tmp_path, monkeypatch):
    import rl3dedit.recon
    import rl3dedit.scene
    from rl3dedit.synthetic import make_synthetic_capture, make_synthetic_scene

    _, capture = make_synthetic_capture(num_views=10, size=32, seed=0)
    fits = []

    class FitResult:
        def __init__(self, scene):
            self.scene, self.metrics = scene, {}

    def fake_fit(capture, recon_config, *, device, seed, background, render):
        fits.append(capture.name)
        return FitResult(make_synthetic_scene(num_gaussians=50, seed=seed))

    monkeypatch.setattr(rl3dedit.recon, "fit", fake_fit, raising=False)
    monkeypatch.setattr(rl3dedit.scene, "load_capture", lambda path, downscale: capture)
    (tmp_path / "data" / "face").mkdir(parents=True)
    config = load_config("tiny")
    cases = _cases(tmp_path, ("a", "{kind: capture, path: face}"), ("b", "{kind: capture, path: face}"),
                   data_root=tmp_path / "data")
    first = load_case_scene(cases.cases[0], cases, config, cache_dir=tmp_path / "scenes", device=torch.device("cpu"))
    second = load_case_scene(cases.cases[1], cases, config, cache_dir=tmp_path / "scenes", device=torch.device("cpu"))
    assert len(fits) == 1 and "base 3DGS fitted" in first.description
    assert torch.allclose(first.scene.means, second.scene.means) and first.scene.num_gaussians == 50
    assert len(first.cameras) == 10
    cached = list((tmp_path / "scenes").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("face-") and (cached[0] / "base.ply").is_file()
    # A different fit setting is a different cache entry.
    load_case_scene(cases.cases[0], cases, config.override("recon.fit_iters", 7), cache_dir=tmp_path / "scenes",
                    device=torch.device("cpu"))
    assert len(fits) == 2 and len(list((tmp_path / "scenes").iterdir())) == 2

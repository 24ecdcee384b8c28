"""One view set for every job: `prepare` (training data) and the edit job choose, size and render the same views.

Non-square cameras expose the old drift: under the paper preset's `release` layout the edit job rounded view sizes
to 2 px while `prepare` rounded to 16 px, so training views had another size than the views edited at inference.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.pipeline import plan_view_set, prepare_view_set, render_size, run_edit
from rl3dedit.pipeline.source import PlySource, SyntheticSource, load_scene_source, scene_source_from_flags
from rl3dedit.pipeline.view_set import render_view_set
from rl3dedit.rl import parse_manifest, prepare_dataset
from rl3dedit.scene import read_cameras_json, write_cameras_json, write_ply
from rl3dedit.synthetic import make_synthetic_capture
from rl3dedit.views import load_image


class _Captured(Exception):
    """Raised by the stand-in editor to stop the edit job once it has been handed its source views."""

    def __init__(self, views: torch.Tensor) -> None:
        super().__init__("captured")
        self.views = views


class _HalvingEditor:
    def sample(self, image, prompt, *, num_steps, guidance_scale, seed):
        return SimpleNamespace(images=(image * 0.5)[None])


def _paper_views_config():
    """The tiny preset with the paper preset's `views` and `render` sections (512-px views, release layout)."""
    tiny, paper = load_config("tiny"), load_config("paper")
    assert paper.views.layout == "release" and paper.views.view_size == 512
    return tiny.model_copy(update={"views": paper.views, "render": paper.render})


@pytest.fixture()
def wide_scene(tmp_path):
    """A small synthetic scene whose cameras are 100 x 64 (not square), written as .ply + INRIA cameras.json."""
    scene, capture = make_synthetic_capture(num_views=12, size=64, seed=0, num_gaussians=100)
    write_ply(scene, tmp_path / "scene.ply")
    write_cameras_json(capture.cameras.rescaled(100, 64), tmp_path / "cameras.json")
    return PlySource(ply=str(tmp_path / "scene.ply"), cameras=str(tmp_path / "cameras.json"))


def test_prepare_and_edit_produce_identical_view_sets_under_the_paper_preset(tmp_path, wide_scene, monkeypatch):
    import rl3dedit.pipeline.edit as edit_job

    def stop_after_render(*args, **kwargs):  # the edit job's view set, taken before anything is edited
        raise _Captured(render_view_set(*args, **kwargs).images.detach().cpu())

    config = _paper_views_config()
    monkeypatch.setattr(edit_job, "render_view_set", stop_after_render)
    with pytest.raises(_Captured) as captured:
        run_edit(config, instruction="make it red", out_dir=tmp_path / "edit", source=wide_scene)
    edit_views = captured.value.views

    manifest = parse_manifest({"scenes": [{"name": "s", "source": wide_scene.model_dump(), "prompts": ["red"],
                                           "view_sets": {"auto": 1}}]})
    prepare_dataset(config, manifest, tmp_path / "data", editor=_HalvingEditor())
    set_dir = tmp_path / "data" / "view_sets" / "s-v000"
    cameras = read_cameras_json(set_dir / "cameras.json")
    ids = [entry["id"] for entry in json.loads((set_dir / "cameras.json").read_text())]

    loaded = load_scene_source(wide_scene, config)
    planned = plan_view_set(loaded.cameras, config.views)
    assert (cameras.width, cameras.height) == (512, 328)  # 512 * 64 / 100 = 327.7 -> 328 (2 px), not 320
    assert tuple(edit_views.shape) == (9, 3, 328, 512)
    assert ids == planned.indices
    torch.testing.assert_close(cameras.Ks, planned.cameras.Ks)
    torch.testing.assert_close(cameras.viewmats, planned.cameras.viewmats)
    prepared = torch.stack([load_image(set_dir / f"source_{i:02d}.png") for i in range(9)])
    expected = (edit_views.clamp(0, 1) * 255).round() / 255  # PNG quantisation
    torch.testing.assert_close(prepared, expected, atol=1 / 255 + 1e-6, rtol=0)


def test_view_set_size_follows_the_layout():
    _, capture = make_synthetic_capture(num_views=10, size=32, seed=1, num_gaussians=100)
    cameras = capture.cameras.rescaled(100, 64)
    config = load_config("tiny")
    aligned = config.views.model_copy(update={"layout": "aligned", "view_size": 80})
    release = aligned.model_copy(update={"layout": "release"})
    sizes = {name: plan_view_set(cameras, views).cameras for name, views in (("aligned", aligned), ("release", release))}
    assert (sizes["aligned"].width, sizes["aligned"].height) == (80, 48)  # 80 * 64 / 100 = 51.2 -> 48 (16 px)
    assert (sizes["release"].width, sizes["release"].height) == (80, 52)  # -> 52 (2 px)
    assert render_size(cameras, 80) == (80, 51)


def test_prepare_view_set_renders_with_the_configured_backend(monkeypatch):
    import rl3dedit.render._contract as contract

    seen = []
    real = contract.render

    def spy(*args, **kwargs):
        seen.append(kwargs.get("backend"))
        return real(*args, **{**kwargs, "backend": "torch"})

    scene, capture = make_synthetic_capture(num_views=10, size=32, seed=1, num_gaussians=100)
    monkeypatch.setattr(contract, "render", spy)
    config = load_config("tiny")
    render = config.render.model_copy(update={"backend": "gsplat"})
    views = config.views.model_copy(update={"view_size": 32})
    view_set = prepare_view_set(scene, capture.cameras, views, render)
    assert seen and set(seen) == {"gsplat"}
    assert view_set.images.shape == (9, 3, 32, 32) and view_set.indices == plan_view_set(capture.cameras, views).indices


def test_scene_source_from_cli_flags():
    assert scene_source_from_flags(data="cap").kind == "capture"
    assert scene_source_from_flags(data="cap", scene="s.ply").ply == "s.ply"
    assert scene_source_from_flags(scene="s.ply", cameras="c.json").cameras == "c.json"
    with pytest.raises(ValueError, match="--scene PLY --cameras FILE"):
        scene_source_from_flags(scene="s.ply")
    with pytest.raises(ValueError, match="--cameras goes with --scene"):
        scene_source_from_flags(data="cap", cameras="c.json")


def test_render_backend_reaches_every_render_of_the_edit_job(tmp_path, monkeypatch):
    """`render.backend` is honoured by the scene source, the view set, the refit and the turntable (every
    rasterizer call of the job), not only by `rl3dedit render`."""
    import rl3dedit.render._contract as contract

    backends = []
    real = contract.rasterize

    def spy(*args, backend="auto", **kwargs):
        backends.append(backend)
        return real(*args, backend=backend, **kwargs)

    monkeypatch.setattr(contract, "rasterize", spy)
    config = load_config("tiny").override("render.backend", "torch").override("recon.refit_iters", 2)
    source = load_scene_source(SyntheticSource(num_views=10, size=32, seed=0), config)
    assert backends and set(backends) == {"torch"}
    backends.clear()
    run_edit(config, instruction="make it red", out_dir=tmp_path / "run", scene=source.scene, cameras=source.cameras,
             turntable_frames=2)
    assert len(backends) >= 4 and set(backends) == {"torch"}  # views, refit steps + scoring, turntable

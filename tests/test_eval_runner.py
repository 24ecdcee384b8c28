"""The benchmark runner: every metric per case, aggregates and files; failures recorded; resume; other methods."""

import json
from pathlib import Path

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.eval import export_eval_cameras, load_cases, run_eval
from rl3dedit.eval.results import ORACLE_METRIC_KEYS
from rl3dedit.pipeline import EditReport

CASES = """
name: runner-test
cases:
  - id: recolor
    split: in_distribution
    scene: {kind: synthetic, num_views: 11, size: 32, seed: 0}
    instruction: make it blue
    source_caption: a red object
    target_caption: a blue object
    eval_views: {kind: held_out, every: 1}
  - id: broken
    split: new_scene
    scene: {kind: synthetic, num_views: 11, size: 32, seed: 0}
    instruction: explode
    source_caption: an object
    target_caption: an exploded object
"""

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "eval" / "viescore_recorded.json").read_text())


class StandInEdit:
    """`run_edit`'s contract without the editor: views 0..8 are 'edited', the scene is tinted blue."""

    def __init__(self, fail_on: set[str]) -> None:
        self.fail_on = fail_on
        self.calls: list[str] = []

    def __call__(self, config, *, instruction, out_dir, scene, cameras, overwrite=False, **_) -> EditReport:
        from rl3dedit.pipeline import write_video
        from rl3dedit.views import save_image

        self.calls.append(instruction)
        if instruction in self.fail_on:
            raise RuntimeError(f"stand-in edit failed on {instruction!r}")
        edited = scene.with_params(sh_dc=scene.sh_dc + torch.tensor([-0.4, -0.1, 0.6]))
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_image(torch.rand(3, 16, 32, generator=torch.Generator().manual_seed(0)), out_dir / "before_after.png")
        write_video(torch.rand(4, 3, 16, 32, generator=torch.Generator().manual_seed(1)), out_dir / "turntable.mp4")
        views = torch.zeros(9, 3, 8, 8)
        return EditReport(
            out_dir=out_dir.resolve(), source_scene=scene, edited_scene=edited, view_indices=list(range(9)),
            view_cameras=cameras[list(range(9))], source_views=views, edited_views=views,
            metrics={"consistency": {"not_computed": "stand-in"}}, timings={"edit": 1.5, "refit": 2.5},
        )


@pytest.fixture(scope="module")
def config():
    return load_config("tiny").override("views.view_size", 32).override("eval.judge_views", 1)


@pytest.fixture()
def cases(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_text(CASES)
    return load_cases(path)


class Replay:
    def __init__(self):
        self.replies = list(RECORDED["replies"][:2])

    def __call__(self, url, headers, body, timeout):
        return json.dumps(self.replies.pop(0)).encode()


def test_run_scores_records_failures_and_resumes(tmp_path, cases, config):
    out = tmp_path / "eval"
    edit = StandInEdit(fail_on={"explode"})
    env = {"OPENAI_BASE_URL": "http://judge.invalid/v1"}
    run = run_eval(config, cases, out, edit_fn=edit, judge_transport=Replay(), env=env)
    assert [r.status for r in run.results] == ["ok", "error"]
    ok, bad = run.results
    assert "stand-in edit failed" in bad.error and "Traceback" in bad.traceback
    # Every metric of the good case is a number (but the oracle ones: no ground truth for an instruction edit),
    # VIEScore from the replayed judge: SC 6, PQ 7.
    measured = {k: m for k, m in ok.metrics.items() if k not in ORACLE_METRIC_KEYS}
    assert {k: m.value is not None for k, m in measured.items()} == dict.fromkeys(measured, True)
    assert {ok.metrics[k].not_computed for k in ORACLE_METRIC_KEYS} == {"oracle cases only"}
    assert ok.metrics["viescore"].value == pytest.approx(42**0.5) and run.judge_model == "gpt-4.1"
    assert ok.metrics["time_s"].value == pytest.approx(4.0)
    assert ok.details["eval_camera_indices"] == [9, 10] and ok.details["edited_view_indices"] == list(range(9))
    assert ok.metrics["ph_loss_rendered_depth"].value > 0.05  # a recoloured scene is not the source geometry's colours
    for name in ("results.json", "table.md", "report.html", "config.yaml", "cases.yaml"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["aggregate"]["overall"]["num_failed"] == 1 and results["judge_model"] == "gpt-4.1"
    assert results["aggregate"]["in_distribution"]["metrics"]["clip_dir"]["count"] == 1
    assert sorted(p.name for p in (out / "cases/recolor/eval_views").iterdir()) == [
        "edited_00.png", "edited_01.png", "source_00.png", "source_01.png"]
    cameras = json.loads((out / "cases/recolor/eval_cameras.json").read_text())
    assert [camera["id"] for camera in cameras] == [9, 10]
    report = (out / "report.html").read_text()
    assert 'data-case-id="recolor"' in report and 'data-case-id="broken"' in report
    assert "stand-in edit failed" in report

    with pytest.raises(FileExistsError, match="--resume"):
        run_eval(config, cases, out, edit_fn=edit, env={})
    fixed = StandInEdit(fail_on=set())
    rerun = run_eval(config, cases, out, edit_fn=fixed, resume=True, env={})
    assert fixed.calls == ["explode"] and rerun.resumed == ["recolor"]
    assert [r.status for r in rerun.results] == ["ok", "ok"]
    # The resumed case keeps its judged VIEScore; the new one has no endpoint and says so.
    assert rerun.results[0].metrics["viescore"].value == pytest.approx(42**0.5)
    assert rerun.results[1].metrics["viescore"].not_computed.startswith("no judge endpoint")


def test_other_method_outputs_are_scored(tmp_path, cases, config):
    from rl3dedit.scene import write_ply
    from rl3dedit.synthetic import make_synthetic_capture
    from rl3dedit.views import save_image

    # Method A: an edited .ply for "recolor"; nothing for "broken" (recorded as an error).
    scene, _ = make_synthetic_capture(num_views=11, size=32, seed=0)
    method = tmp_path / "other"
    (method / "recolor").mkdir(parents=True)
    write_ply(scene, method / "recolor" / "edited.ply")
    (method / "recolor" / "timings.json").write_text('{"edit": 30.0, "fit": 12.0}')
    run = run_eval(config.override("eval.metrics", ["clip", "ph_loss_rendered_depth", "time"]), cases,
                   tmp_path / "eval", method_outputs=method)
    ok, missing = run.results
    assert run.method == "other" and ok.status == "ok" and missing.status == "error"
    assert "no method outputs folder" in missing.error
    # The method returned the source scene unchanged: CLIP-I is 1 and CLIP-dir has no direction.
    assert ok.metrics["clip_image"].value == pytest.approx(1.0, abs=1e-5)
    assert ok.metrics["time_s"].value == pytest.approx(42.0)
    assert ok.metrics["ph_loss"].not_computed == "switched off in eval.metrics"
    assert ok.metrics["viescore"].not_computed == "switched off in eval.metrics"

    # Method B renders the exported evaluation cameras itself (PNG files in camera order).
    from rl3dedit.render import render
    from rl3dedit.scene import read_cameras_json

    exported = export_eval_cameras(config, cases, tmp_path / "cameras")
    assert [p.parent.name for p in exported] == ["recolor", "broken"]
    data = json.loads(exported[0].read_text())
    assert data == json.loads((tmp_path / "eval/cases/recolor/eval_cameras.json").read_text())
    cameras = read_cameras_json(exported[0])
    renders = tmp_path / "renders"
    for i, image in enumerate(render(scene, cameras, mode="RGB", background=(1.0, 1.0, 1.0)).rgb):
        save_image(image, renders / "recolor" / "eval_views" / f"{i:03d}.png")
    for i in range(9):  # the method's 2D edited views are optional and only shown in the report
        save_image(torch.full((3, 16, 16), i / 9), renders / "recolor" / "edited_views" / f"{i}.png")
    save_image(torch.zeros(3, 48, 48), renders / "broken.png")  # a stray file is not a case folder
    run = run_eval(config.override("eval.metrics", ["clip"]), cases, tmp_path / "eval-b", method_outputs=renders,
                   method_name="B")
    assert run.results[0].metrics["clip_image"].value == pytest.approx(1.0, abs=1e-3)
    assert run.results[0].metrics["time_s"].not_computed == "switched off in eval.metrics"
    assert run.results[0].files["edited_views"] == "cases/recolor/edited_views.png"
    assert "the method&#x27;s edited views" in (tmp_path / "eval-b" / "report.html").read_text()


@pytest.mark.slow
@pytest.mark.shared
def test_paper_style_cases_export_render_path_cameras(tmp_path, shared_dir):
    """The shipped paper-style cases resolve on the real captures: 9 render-path frames per case."""
    import importlib.resources

    from rl3dedit.scene import read_cameras_json

    path = Path(str(importlib.resources.files("rl3dedit") / "configs" / "eval" / "paper_style.yaml"))
    cases = load_cases(path, data_root=shared_dir / "data")
    config = load_config("tiny")
    exported = export_eval_cameras(config, cases, tmp_path / "cams")
    assert len(exported) == len(cases.cases)
    for file in exported:
        cameras = read_cameras_json(file)  # render-path frames: ids 0..8
        assert len(cameras) == 9 and [c["id"] for c in json.loads(file.read_text())] == list(range(9))
        assert max(cameras.width, cameras.height) == config.views.view_size


def test_eval_renders_with_the_configured_backend(tmp_path, cases, config, monkeypatch):
    """`render.backend` reaches eval's own renders (source and edited evaluation views, base fits), not only the
    edit job's."""
    import rl3dedit.render._contract as contract

    backends: list[str] = []
    real = contract.rasterize

    def spy(*args, backend="auto", **kwargs):
        backends.append(backend)
        return real(*args, backend=backend, **kwargs)

    monkeypatch.setattr(contract, "rasterize", spy)
    torch_backend = config.override("render.backend", "torch").override("eval.metrics", ["ph_loss_rendered_depth"])
    run = run_eval(torch_backend, cases, tmp_path / "eval", edit_fn=StandInEdit(fail_on={"explode"}), env={})
    assert run.results[0].status == "ok"
    assert len(backends) >= 2 and set(backends) == {"torch"}

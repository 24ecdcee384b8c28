"""Offline preparation: layout, anchor edits per view, and resumption after an interruption (stub editor)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.rl import PreparedDataset, parse_manifest, prepare_dataset

MANIFEST = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                        "prompts": ["make it red", "make it blue"], "view_sets": {"auto": 2}}]}


class StubEditor:
    """Stands in for the Kontext editor: 'edits' a view by halving it; can fail after n calls (an interruption)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls, self.fail_after = 0, fail_after

    def sample(self, image, prompt, *, num_steps, guidance_scale, seed):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        return SimpleNamespace(images=(image * 0.5)[None])


def config():
    cfg = load_config("tiny")
    return cfg.model_copy(update={"views": cfg.views.model_copy(update={"view_size": 32})})


def test_prepare_layout_and_resume_after_interruption(tmp_path):
    cfg, manifest = config(), parse_manifest(MANIFEST)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(cfg, manifest, tmp_path, editor=StubEditor(fail_after=9 + 4))  # dies inside sample 2
    index = json.loads((tmp_path / "index.json").read_text())
    assert list(index["samples"]) == ["s-v000-p000"] and not index["complete"]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["s-v000-p000"]  # no partial item
    with pytest.raises(ValueError, match="incomplete"):
        PreparedDataset(tmp_path)

    editor = StubEditor()
    report = prepare_dataset(cfg, manifest, tmp_path, editor=editor)
    assert editor.calls == 3 * 9  # only the 3 missing samples were edited
    assert report.num_samples == 4 and report.num_view_sets == 2 and report.skipped == 3
    data = PreparedDataset(tmp_path)
    assert data.ids == ["s-v000-p000", "s-v000-p001", "s-v001-p000", "s-v001-p001"]
    sample = data[3]
    assert sample.source_views.shape == sample.anchors.shape == (9, 3, 32, 32)
    torch.testing.assert_close(sample.anchors, sample.source_views * 0.5, atol=1 / 255, rtol=0)
    assert len(sample.cameras) == 9 and sample.cameras.width == 32
    sets = json.loads((tmp_path / "index.json").read_text())["view_sets"]
    assert sets["s-v000"]["indices"] != sets["s-v001"]["indices"]


def test_explicit_view_sets_are_checked_against_the_scene(tmp_path):
    bad = {"scenes": [{**MANIFEST["scenes"][0], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 40]]}]}
    with pytest.raises(ValueError, match=r"scene s: view_sets\[0\].*below the scene's 12 cameras"):
        prepare_dataset(config(), parse_manifest(bad), tmp_path, editor=StubEditor())


def test_a_changed_prompt_or_setting_is_prepared_again_not_reused(tmp_path):
    cfg, manifest = config(), parse_manifest(MANIFEST)
    prepare_dataset(cfg, manifest, tmp_path, editor=StubEditor())
    changed = {"scenes": [{**MANIFEST["scenes"][0], "prompts": ["make it red", "make it green"]}]}
    editor = StubEditor()
    report = prepare_dataset(cfg, parse_manifest(changed), tmp_path, editor=editor)
    assert editor.calls == 2 * 9 and report.skipped == 2 + 2  # both view sets and the two "red" samples reused
    data = PreparedDataset(tmp_path)
    assert [data[i].prompt for i in range(4)] == ["make it red", "make it green"] * 2
    assert json.loads((tmp_path / "samples" / "s-v001-p001" / "meta.json").read_text())["prompt"] == "make it green"
    bigger = cfg.model_copy(update={"views": cfg.views.model_copy(update={"view_size": 48})})
    editor = StubEditor()
    report = prepare_dataset(bigger, parse_manifest(changed), tmp_path, editor=editor)
    assert editor.calls == 4 * 9 and report.skipped == 0  # new view size: every view set and sample again
    assert PreparedDataset(tmp_path)[0].source_views.shape[-1] == 48


def test_prepare_refuses_a_foreign_folder_and_a_failed_first_run_leaves_nothing(tmp_path):
    from rl3dedit.errors import OutputExistsError

    user = tmp_path / "D"
    (user / "samples" / "s-v000-p000").mkdir(parents=True)
    (user / "samples" / "s-v000-p000" / "mine.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="not written by rl3dedit"):
        prepare_dataset(config(), parse_manifest(MANIFEST), user, editor=StubEditor())
    assert [p.name for p in (user / "samples" / "s-v000-p000").iterdir()] == ["mine.txt"]
    bad = {"scenes": [{**MANIFEST["scenes"][0], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 40]]}]}
    with pytest.raises(ValueError):
        prepare_dataset(config(), parse_manifest(bad), tmp_path / "new", editor=StubEditor())
    assert not (tmp_path / "new").exists()


def test_a_view_set_that_does_not_fit_the_scene_names_the_manifest(tmp_path):
    import yaml

    from rl3dedit.errors import InputError
    from rl3dedit.rl import load_manifest

    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({"scenes": [{**MANIFEST["scenes"][0], "view_sets": [list(range(8)) + [40]]}]}))
    with pytest.raises(InputError, match=rf"{path}: scene s: view_sets\[0\]"):
        prepare_dataset(config(), load_manifest(path), tmp_path / "out", editor=StubEditor())

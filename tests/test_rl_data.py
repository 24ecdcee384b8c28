"""Training manifest: validation messages naming the entry, sample expansion, the packaged manifests."""

import pytest

from rl3dedit.rl import builtin_manifest_path, load_manifest, parse_manifest, sample_specs


def _scene(**overrides):
    entry = {"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 1}, "prompts": ["a", "b"],
             "view_sets": {"auto": 2}}
    entry.update(overrides)
    return entry


def test_every_view_set_prompt_pair_is_a_sample():
    manifest = parse_manifest({"scenes": [_scene(), _scene(name="t", prompts=["c"], view_sets=[[0, 1], [2, 3], [4, 5]])]})
    specs = sample_specs(manifest, {"s": 2, "t": 3})
    assert len(specs) == 2 * 2 + 3 * 1
    assert [s.id for s in specs[:2]] == ["s-v000-p000", "s-v000-p001"]
    assert len({s.id for s in specs}) == len(specs)
    assert manifest.num_prompts == 3


@pytest.mark.parametrize(
    ("scenes", "message"),
    [
        ([_scene(prompts=["ok", "  "])], r"scenes\[0\]\.prompts: .*prompts\[1\]: empty"),
        ([_scene(), _scene(name="u", prompts=[])], r"scenes\[1\]\.prompts: .*at least one prompt"),
        ([_scene(synthetic=None)], r"scenes\[0\]: .*exactly one scene source"),
        ([_scene(synthetic=None, ply="x.ply")], r"scenes\[0\]: .*needs `cameras`"),
        ([_scene(view_sets=[[0, 0, 1]])], r"scenes\[0\]\.view_sets.*view_sets\[0\]: expected distinct"),
        ([_scene(), _scene()], r"duplicate names \['s'\]"),
        ([_scene(colour="red")], r"scenes\[0\]\.colour: Extra inputs"),
    ],
)
def test_validation_errors_name_the_entry(scenes, message):
    with pytest.raises(ValueError, match=message):
        parse_manifest({"scenes": scenes}, "m.yaml")


def test_load_manifest_resolves_paths_and_reports_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("scenes:\n  - name: a\n    ply: scene.ply\n    cameras: cams.json\n    prompts: [x]\n"
                    "    view_sets: [[0, 1]]\n")
    manifest = load_manifest(path)
    assert manifest.path(manifest.scenes[0].source.ply) == tmp_path / "scene.ply"
    path.write_text("scenes: [\n")
    with pytest.raises(ValueError, match="m.yaml: not valid YAML"):
        load_manifest(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_manifest(tmp_path / "missing.yaml")


def test_packaged_manifests_are_valid():
    tiny = load_manifest(builtin_manifest_path())
    assert tiny.scenes[0].source.kind == "synthetic" and len(tiny.scenes[0].prompts) == 2
    paper = load_manifest(builtin_manifest_path().with_name("paper_style.yaml"))
    assert all(s.source.kind == "capture" for s in paper.scenes)

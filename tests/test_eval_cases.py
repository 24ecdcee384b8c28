"""Cases files: the shipped files validate, errors name the entry, data roots resolve, eval cameras are novel."""

import importlib.resources
from pathlib import Path

import pytest
import torch

from rl3dedit.eval.cases import DATA_ROOT_ENV, SPLITS, load_cases, resolve_eval_cameras
from rl3dedit.scene import Cameras

CASES_DIR = Path(str(importlib.resources.files("rl3dedit") / "configs" / "eval"))


def _cameras(n: int) -> Cameras:
    viewmats = torch.eye(4).repeat(n, 1, 1)
    viewmats[:, 0, 3] = torch.arange(n, dtype=torch.float32)
    Ks = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]).repeat(n, 1, 1)
    return Cameras(viewmats, Ks, 64, 64)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


CASE = """
  - id: {id}
    split: {split}
    scene: {{kind: synthetic, seed: 0}}
    instruction: make it blue
    source_caption: a red thing
    target_caption: a blue thing
"""


def test_tiny_cases_cover_every_split():
    cases = load_cases(CASES_DIR / "tiny.yaml")
    assert cases.name == "tiny" and 2 <= len(cases.cases) <= 3
    assert {case.split for case in cases.cases} == set(SPLITS)
    assert len({case.id for case in cases.cases}) == len(cases.cases)


@pytest.mark.shared
def test_paper_style_cases_point_at_the_shared_captures(shared_dir, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(shared_dir / "data"))
    cases = load_cases(CASES_DIR / "paper_style.yaml")
    assert cases.data_root == (shared_dir / "data").resolve()
    assert {"in_distribution", "unseen_instruction"} <= {case.split for case in cases.cases}
    for case in cases.cases:
        assert case.scene.kind == "capture"
        assert (cases.resolve(case.scene.path) / "transforms.json").is_file(), case.id
        assert case.source_caption != case.target_caption


def test_data_root_precedence(tmp_path, monkeypatch):
    path = _write(tmp_path, "data_root: scenes\ncases:" + CASE.format(id="a", split="new_scene"))
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert load_cases(path).data_root == (tmp_path / "scenes").resolve()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert load_cases(path).data_root == (tmp_path / "env").resolve()
    assert load_cases(path, data_root=tmp_path / "arg").data_root == (tmp_path / "arg").resolve()
    assert load_cases(path, data_root=tmp_path / "arg").resolve("face") == (tmp_path / "arg" / "face").resolve()


def test_errors_name_the_entry_and_field(tmp_path):
    text = "cases:" + CASE.format(id="good", split="in_distribution") + CASE.format(id="bad", split="novel")
    text += CASE.format(id="good", split="new_scene")
    with pytest.raises(ValueError) as info:
        load_cases(_write(tmp_path, text))
    message = str(info.value)
    assert "cases[1] (id 'bad')" in message and "split" in message
    assert "cases[2] (id 'good'): duplicate id" in message
    missing = "cases:\n  - id: x\n    split: new_scene\n    scene: {kind: ply, ply: a.ply}\n    instruction: i\n"
    with pytest.raises(ValueError, match=r"(?s)cases\[0\] \(id 'x'\).*scene\.ply\.cameras.*source_caption"):
        load_cases(_write(tmp_path, missing))
    with pytest.raises(ValueError, match="unknown top-level keys"):
        load_cases(_write(tmp_path, "cases: []\nextra: 1\n"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cases(tmp_path / "nope.yaml")


def test_eval_cameras_are_novel_views(tmp_path):
    text = "cases:" + CASE.format(id="a", split="new_scene")
    case = load_cases(_write(tmp_path, text)).cases[0]
    cameras = _cameras(12)
    edited = [0, 1, 2, 4, 5, 7, 8, 10, 11]
    held_out = resolve_eval_cameras(case, cameras, edited_indices=edited)
    assert held_out.indices == [3, 6, 9] and len(held_out.cameras) == 3
    assert torch.equal(held_out.cameras.viewmats[:, 0, 3], torch.tensor([3.0, 6.0, 9.0]))

    every2 = case.model_copy(update={"eval_views": case.eval_views.model_copy(update={"every": 2})})
    assert resolve_eval_cameras(every2, cameras, edited_indices=edited).indices == [3, 9]

    from rl3dedit.eval.cases import IndexViews, RenderPathViews

    explicit = case.model_copy(update={"eval_views": IndexViews(kind="indices", indices=[6, 4])})
    with pytest.raises(ValueError, match=r"case 'a': eval_views: indices \[4\] are edited views"):
        resolve_eval_cameras(explicit, cameras, edited_indices=edited)
    path_case = case.model_copy(update={"eval_views": RenderPathViews(kind="render_path", num_views=3)})
    with pytest.raises(ValueError, match="needs a capture with camera_paths"):
        resolve_eval_cameras(path_case, cameras, edited_indices=edited)
    picked = resolve_eval_cameras(path_case, cameras, edited_indices=edited, render_path=_cameras(7))
    assert torch.equal(picked.cameras.viewmats[:, 0, 3], torch.tensor([0.0, 3.0, 6.0])) and picked.indices is None
    with pytest.raises(ValueError, match="no held-out camera"):
        resolve_eval_cameras(case, _cameras(9), edited_indices=list(range(9)))

from pathlib import Path

import pytest

from rl3dedit.pipeline import RUN_MARKER, OutputExistsError, atomic_run_dir


def test_success_renames_into_place(tmp_path: Path):
    out = tmp_path / "run"
    with atomic_run_dir(out) as tmp:
        assert tmp != out and tmp.parent == out.parent
        (tmp / "a.txt").write_text("x")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "x"
    assert (out / RUN_MARKER).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_failure_leaves_nothing(tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with atomic_run_dir(out) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("stage failed")
    assert list(tmp_path.iterdir()) == []


def test_refuses_foreign_folder(tmp_path: Path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="not written by rl3dedit"):
        with atomic_run_dir(out, overwrite=True):
            pass
    assert (out / "precious.txt").read_text() == "keep"


def test_overwrite_replaces_earlier_run_only_when_asked(tmp_path: Path):
    out = tmp_path / "run"
    with atomic_run_dir(out) as tmp:
        (tmp / "v1.txt").write_text("1")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        with atomic_run_dir(out):
            pass
    with atomic_run_dir(out, overwrite=True) as tmp:
        (tmp / "v2.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [RUN_MARKER, "v2.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]

"""Output safety (issue 17 items 1, 2, 11): folders we did not write are never touched, the destination is locked
and re-checked at the final rename, staging folders of killed runs are cleaned, modes follow the umask."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rl3dedit.errors import OutputExistsError
from rl3dedit.files import (
    OWNER_MARKER,
    STAGING_MARKER,
    atomic_dir,
    atomic_path,
    claimed_dir,
    destination_lock,
    write_json,
)


def test_atomic_dir_refuses_a_folder_created_at_the_destination_during_the_run(tmp_path: Path):
    out = tmp_path / "R"
    with pytest.raises(OutputExistsError, match="new result is in") as info:
        with atomic_dir(out) as tmp:
            (tmp / "result.txt").write_text("new")
            out.mkdir()  # a user (or another program) creates R meanwhile, with a file in it
            (out / "mine.txt").write_text("keep me")
    assert (out / "mine.txt").read_text() == "keep me"
    kept = Path(str(info.value).rsplit("new result is in ", 1)[1])
    assert kept.parent == tmp_path and kept.name.startswith("R.new-")
    assert (kept / "result.txt").read_text() == "new" and not (kept / STAGING_MARKER).exists()


def test_atomic_dir_refuses_when_the_destination_was_replaced_during_the_run(tmp_path: Path):
    out = tmp_path / "R"
    with atomic_dir(out) as tmp:
        (tmp / "v1.txt").write_text("1")
    with pytest.raises(OutputExistsError):
        with atomic_dir(out) as tmp:
            (tmp / "v2.txt").write_text("2")
            os.rename(out, tmp_path / "moved")
            out.mkdir()
            (out / "theirs.txt").write_text("t")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]
    assert (tmp_path / "moved" / "v1.txt").exists()


def test_second_writer_of_one_destination_is_refused_and_the_first_result_survives(tmp_path: Path):
    out = tmp_path / "R"
    with atomic_dir(out) as first:
        (first / "a.txt").write_text("first")
        code = textwrap.dedent(f"""
            from rl3dedit.files import atomic_dir
            from rl3dedit.errors import OutputExistsError
            try:
                with atomic_dir({str(out)!r}) as tmp:
                    (tmp / "a.txt").write_text("second")
            except OutputExistsError as exc:
                print("refused:", exc)
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "refused:" in done.stdout and "another rl3dedit run is writing" in done.stdout, done.stderr
    assert (out / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]  # no lock file or staging folder left behind


def test_lock_is_reentrant_in_one_process_and_released(tmp_path: Path):
    out = tmp_path / "R"
    with destination_lock(out):
        with atomic_dir(out) as tmp:  # atomic_run_dir inside a locked command must not deadlock
            (tmp / "x").write_text("x")
    with destination_lock(out):
        pass
    assert (out / "x").exists()


def test_stale_staging_of_a_killed_run_is_cleaned_by_the_next_run(tmp_path: Path):
    out = tmp_path / "R"
    code = textwrap.dedent(f"""
        import os, signal
        from rl3dedit.files import atomic_dir
        with atomic_dir({str(out)!r}) as tmp:
            (tmp / "half.txt").write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".R.tmp-")]
    assert len(stale) == 1
    foreign = tmp_path / ".R.tmp-notours"  # a hidden folder without our marker is not ours to delete
    foreign.mkdir()
    with atomic_dir(out) as tmp:
        (tmp / "ok.txt").write_text("ok")
    assert not stale[0].exists() and foreign.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".R.lock") == [".R.tmp-notours", "R"]


def test_a_kill_between_the_two_renames_restores_the_old_result(tmp_path: Path):
    out = tmp_path / "R"
    with atomic_dir(out) as tmp:
        (tmp / "old.txt").write_text("old")
    trash = tmp_path / ".R.old-abc"  # as left by a kill after moving R aside and before renaming the new one in
    trash.mkdir()
    (trash / STAGING_MARKER).write_text("1\n")
    os.rename(out, trash / "R")
    with pytest.raises(RuntimeError):
        with atomic_dir(out):
            raise RuntimeError("this run fails too")
    assert (out / "old.txt").read_text() == "old" and not trash.exists()


def test_sigterm_runs_cleanup_like_ctrl_c(tmp_path: Path):
    out = tmp_path / "R"
    code = textwrap.dedent(f"""
        import os, signal
        from rl3dedit.files import atomic_dir, handle_sigterm_as_interrupt
        handle_sigterm_as_interrupt()
        with atomic_dir({str(out)!r}) as tmp:
            (tmp / "half.txt").write_text("x")
            os.kill(os.getpid(), signal.SIGTERM)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_modes_follow_the_umask(tmp_path: Path):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "R") as tmp:
            with atomic_path(tmp / "w.safetensors") as f:
                f.write_bytes(b"x")
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        write_json(tmp_path / "private.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "R").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "R" / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


def test_claimed_dir_refuses_a_foreign_folder_and_touches_nothing(tmp_path: Path):
    user = tmp_path / "U"
    user.mkdir()
    (user / "config.yaml").write_text("mine")
    with pytest.raises(OutputExistsError, match="not written by rl3dedit"):
        with claimed_dir(user, "training run"):
            pytest.fail("must not get here")
    assert sorted(p.name for p in user.iterdir()) == ["config.yaml"]
    assert (user / "config.yaml").read_text() == "mine"


def test_claimed_dir_reuses_its_own_folder_and_cleans_up_a_failed_first_run(tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with claimed_dir(out, "training run") as folder:
            (folder / "config.yaml").write_text("x")
            raise RuntimeError("models failed to load")
    assert not out.exists()  # a failed first run leaves nothing that looks like a run
    with claimed_dir(out, "training run") as folder:
        (folder / "a").write_text("a")
    with pytest.raises(RuntimeError):
        with claimed_dir(out, "training run") as folder:
            raise RuntimeError("second run fails")
    assert sorted(p.name for p in out.iterdir()) == [OWNER_MARKER, "a"]  # an earlier run is never removed


def test_claimed_dir_keeps_resumable_work_of_a_failed_first_run(tmp_path: Path):
    out = tmp_path / "data"
    with pytest.raises(RuntimeError):
        with claimed_dir(out, "prepared data", keep_on_error=lambda p: (p / "index.json").exists()) as folder:
            (folder / "index.json").write_text("{}")
            raise RuntimeError("item 2 failed")
    assert (out / "index.json").exists()


def test_write_json_is_strict(tmp_path: Path):
    write_json(tmp_path / "a.json", {"x": math.nan, "y": [math.inf, 1.0]})
    text = (tmp_path / "a.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"x": None, "y": [None, 1.0]}


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_read_weights_names_the_file_for_every_bad_weight_file(tmp_path: Path):
    import pickle

    import torch
    from safetensors.torch import save_file

    from rl3dedit.errors import InputError
    from rl3dedit.files import read_weights

    good = tmp_path / "good.safetensors"
    save_file({"w": torch.ones(2)}, str(good))
    assert torch.equal(read_weights(good, "verifier weights")["w"], torch.ones(2))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "corrupt.safetensors").write_bytes(good.read_bytes()[:20])
    torch.save({"w": torch.ones(2)}, tmp_path / "pickled.safetensors")  # a torch pickle under the wrong suffix
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"w": _Evil()}, f, protocol=2)
    save_file({"w": torch.tensor([1.0, float("nan")])}, str(tmp_path / "nan.safetensors"))
    torch.save({"w": torch.tensor([float("inf")])}, tmp_path / "inf.pt")
    cases = {"empty.safetensors": "not a readable safetensors", "corrupt.safetensors": "not a readable safetensors",
             "pickled.safetensors": "not a readable safetensors", "evil.pt": "refused to load",
             "nan.safetensors": "hold NaN or inf", "inf.pt": "hold NaN or inf"}
    for name, message in cases.items():
        with pytest.raises(InputError, match=message) as info:
            read_weights(tmp_path / name, "verifier weights")
        assert str(tmp_path / name) in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        read_weights(tmp_path / "missing.pt", "verifier weights")


def test_disk_full_names_the_output(tmp_path: Path):
    import errno

    for writer in (atomic_path, atomic_dir):
        target = tmp_path / ("out.png" if writer is atomic_path else "R")
        with pytest.raises(OSError) as info:
            with writer(target):
                raise OSError(errno.ENOSPC, "No space left on device")  # as Pillow raises it: no file name
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == []

"""User errors end as one line naming the input, exit code 1, no traceback, and nothing of the user's is touched
(issue 17 items 1, 8, 11)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rl3dedit.cli.main import _ReportingGroup, app
from rl3dedit.errors import InputError

runner = CliRunner()


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return " ".join(output[output.index("error:"):].split())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path / name
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def test_train_refuses_a_folder_it_did_not_write(tmp_path):
    user = _user_folder(tmp_path, "U", {"config.yaml": "my settings", "export/lora/keep.txt": "mine"})
    before = _snapshot(user)
    result = runner.invoke(app, ["train", "--out", str(user), "--max-steps", "1"])
    assert result.exit_code == 1
    assert "was not written by rl3dedit" in _one_error_line(result.output)
    assert _snapshot(user) == before


def test_a_failed_first_train_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--preset", "paper", "--device", "cpu", "--out", str(out),
                                 "--max-steps", "1"])
    assert result.exit_code != 0
    assert not out.exists()  # no config.yaml / run.json that look like a run


def test_eval_cameras_only_refuses_a_folder_it_did_not_write(tmp_path):
    user = _user_folder(tmp_path, "U", {"cases/c0/eval_cameras.json": "{\"mine\": true}"})
    before = _snapshot(user)
    cases = Path(__file__).resolve().parents[1] / "configs" / "eval" / "tiny.yaml"
    result = runner.invoke(app, ["eval", "--cases", str(cases), "--out", str(user), "--cameras-only"])
    assert result.exit_code != 0
    assert "not an rl3dedit eval folder" in _one_error_line(result.output)
    assert _snapshot(user) == before


def test_fit_refuses_an_unwritable_out_before_loading_anything(tmp_path, monkeypatch):
    parent = tmp_path / "ro"
    parent.mkdir()
    if os.geteuid() == 0:  # root writes anywhere; simulate the read-only mount instead
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == parent else real(p, mode))
    else:
        parent.chmod(0o555)
    try:
        result = runner.invoke(app, ["fit", "--data", str(tmp_path / "no-such-capture"), "--out", str(parent / "fit")])
    finally:
        parent.chmod(0o755)
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert "cannot write in" in line and "no-such-capture" not in line  # refused before the capture is read


def _probe_app(error: BaseException) -> typer.Typer:
    probe = typer.Typer(cls=_ReportingGroup)

    @probe.command("boom")
    def boom() -> None:
        raise error

    @probe.command("other")
    def other() -> None:
        pass

    return probe


@pytest.mark.parametrize("error, shown", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/scene.ply"), "No space left on device: '/data/out"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"), "Read-only file system: '/mnt/ro/x'"),
    (InputError("/data/cap/transforms.json frame 3: focal length [1] is not positive"), "frame 3: focal length [1]"),
])
def test_user_errors_are_one_line_with_exit_code_1(error, shown):
    result = runner.invoke(_probe_app(error), ["boom"])
    assert result.exit_code == 1
    assert shown in _one_error_line(result.output)


def test_programming_errors_keep_their_traceback():
    result = runner.invoke(_probe_app(KeyError("bug")), ["boom"])
    assert isinstance(result.exception, KeyError)


@pytest.mark.parametrize("args, shown, code", [
    (["score", "--rows", "0", "views"], "Invalid value for '--rows'", 2),
    (["score", "--cols", "-1", "views"], "Invalid value for '--cols'", 2),
    (["edit", "--steps", "0", "--instruction", "x", "--out", "o"], "Invalid value for '--steps'", 2),
])
def test_impossible_numbers_are_usage_errors(tmp_path, args, shown, code):
    result = runner.invoke(app, [a if a not in ("views", "o") else str(tmp_path / a) for a in args])
    assert result.exit_code == code and "Traceback" not in result.output
    assert shown in " ".join(result.output.split())


@pytest.mark.parametrize("name, shown", [("banana", "'banana' is not a device"), ("cuda:7", "cuda:7")])
def test_unknown_or_missing_devices_are_one_line(name, shown):
    import torch

    from rl3dedit.config import resolve_device

    if name.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(InputError, match=shown):
        resolve_device(name)
    assert resolve_device("cpu") == torch.device("cpu")


def test_score_refuses_views_too_small_to_score(tmp_path):
    import torch

    from rl3dedit.views import save_image

    for i in range(3):
        save_image(torch.rand(3, 1, 1), tmp_path / "views" / f"v{i}.png")
    result = runner.invoke(app, ["score", "--verifier", "tiny", str(tmp_path / "views")])
    assert result.exit_code == 1
    assert "views are 1x1 px" in _one_error_line(result.output)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x80\x02}q\x00."])
def test_score_with_unreadable_verifier_weights_is_one_line(tmp_path, content):
    import torch

    from rl3dedit.views import save_image

    for i in range(3):
        save_image(torch.rand(3, 16, 16), tmp_path / "views" / f"v{i}.png")
    weights = tmp_path / ("w.pt" if content.startswith(b"\x80") else "w.safetensors")
    weights.write_bytes(content)
    result = runner.invoke(app, ["score", "--verifier-weights", str(weights), str(tmp_path / "views")])
    assert result.exit_code == 1
    assert str(weights) in _one_error_line(result.output)


def test_fit_into_a_folder_another_run_is_writing_is_refused_before_any_work(tmp_path):
    import fcntl

    fd = os.open(tmp_path.resolve() / ".fit.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as another process's run holds it
    try:
        result = runner.invoke(app, ["fit", "--data", str(tmp_path / "no-such-capture"), "--out", str(tmp_path / "fit")])
    finally:
        os.close(fd)
    assert result.exit_code == 1
    line = _one_error_line(result.output)
    assert "another rl3dedit run is writing" in line and "no-such-capture" not in line


def test_a_refused_resume_leaves_the_run_config_untouched(tmp_path):
    from test_cli_train import small_files

    config, manifest = small_files(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--config", str(config), "--manifest", str(manifest), "--out", str(out), "--max-steps", "1"]
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "config.yaml").read_bytes()
    (tmp_path / "other").mkdir()
    other, _ = small_files(tmp_path / "other", lora_rank=2)  # a config whose adapter cannot load the checkpoint
    result = runner.invoke(app, [*args[:2], str(other), *args[3:], "--resume"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (out / "config.yaml").read_bytes() == before

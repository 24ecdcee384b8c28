"""`rl3dedit doctor`, the preflight of `edit --preset paper`, the global flags, and quiet logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rl3dedit.cli.main import app

runner = CliRunner()


def _text(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def test_doctor_paper_on_cpu_exits_zero_and_names_what_is_missing():
    result = runner.invoke(app, ["doctor", "--preset", "paper", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["device"]["device"] == "cpu" and report["device"]["gpu_name"] is None
    missing = {m["key"] for m in report["models"] if m["status"] == "missing"}
    assert {"editor.model", "editor.transformer_file", "verifier.model"} <= missing
    stages = [s["stage"] for s in report["memory_plan"]]
    assert stages == ["edit", "verify", "refit", "turntable", "train"]
    assert report["parameters"]["flux_transformer"] > 11e9
    assert report["gsplat"]["kernels"] is False and report["gsplat"]["reason"]
    assert any("GPU-sized" in p for p in report["problems"])


def test_doctor_prints_the_plan_for_people():
    result = runner.invoke(app, ["doctor", "--preset", "tiny"])
    assert result.exit_code == 0, result.output
    text = _text(result)
    assert "no GPU" in text or "none found" in text
    assert "memory plan" in text and "random weights" in text


def test_edit_paper_fails_at_once_listing_every_missing_model_and_the_cpu(tmp_path: Path, shared_dir: Path):
    out = tmp_path / "o"
    result = runner.invoke(app, ["edit", "--preset", "paper", "--device", "cpu", "--data",
                                 str(shared_dir / "data" / "face"), "-i", "x", "--out", str(out)])
    assert result.exit_code == 1
    text = _text(result)
    assert "preset paper" in text.splitlines()[0] if text else False
    for needle in ("--editor-model PATH", "--transformer-file PATH", "--verifier-model PATH", "GPU-sized job",
                   "--force"):
        assert needle in text, needle
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    both = runner.invoke(app, ["edit", "--preset", "paper", "--device", "cpu", "--data",
                               str(shared_dir / "data" / "face"), "-i", "x", "--out", str(out)])
    text = _text(both)
    assert both.exit_code == 1 and "not written by rl3dedit" in text and "--editor-model PATH" in text


def test_global_flags_version_short_help_and_module_entry():
    from rl3dedit import __version__

    assert runner.invoke(app, ["--version"]).output.strip() == f"rl3dedit {__version__}"
    short = runner.invoke(app, ["render", "-h"])
    assert short.exit_code == 0 and "--camera-path" in short.output
    assert "<bool>" not in short.output and "--grid " in short.output  # boolean flags shown as flags
    assert "--size" not in short.output  # the deprecated alias is hidden
    module = subprocess.run([sys.executable, "-m", "rl3dedit", "--version"], capture_output=True, text=True,
                            timeout=120)
    assert module.returncode == 0 and module.stdout.strip() == f"rl3dedit {__version__}"


def test_default_preset_is_stated_in_help_and_first_line(tmp_path: Path):
    help_text = " ".join(runner.invoke(app, ["edit", "-h"]).output.split())
    assert "tiny (the default" in help_text


THIRD_PARTY_MARKERS = ("[transformers]", "[diffusers]", "Warning", "warn(", "should be kept in float32",
                       "truncated because CLIP", "Token indices sequence length", "torch_dtype", "No LoRA keys")


def test_tiny_default_run_logs_no_third_party_warning(tmp_path: Path):
    """The demo on the default preset in a fresh process (import-time notices included)."""
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    env.pop("TRANSFORMERS_VERBOSITY", None)
    env.pop("DIFFUSERS_VERBOSITY", None)
    done = subprocess.run([sys.executable, "-m", "rl3dedit", "demo", "--out", str(tmp_path / "demo"),
                           "--set", "recon.refit_iters=2"], capture_output=True, text=True, env=env, timeout=600)
    logs = done.stdout + done.stderr
    assert done.returncode == 0, logs
    assert "preset tiny (the default" in logs.splitlines()[0]
    found = [marker for marker in THIRD_PARTY_MARKERS if marker in logs]
    assert not found, f"third-party warnings {found} in:\n{logs}"
    assert "random tiny verifier" in logs
    assert "held-out PSNR nan" not in logs

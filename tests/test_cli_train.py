"""`rl3dedit train`: a tiny run through the CLI, the refusal to overwrite a run, the done-when timings (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.config import load_config

runner = CliRunner()
ONE_SAMPLE = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                          "prompts": ["make it red"], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 8]]}]}


def small_files(tmp_path: Path) -> tuple[Path, Path]:
    data = load_config("tiny").model_dump(mode="json")
    data["views"]["view_size"] = 32
    data["rl"]["prepare_num_steps"] = 1
    config, manifest = tmp_path / "cfg.yaml", tmp_path / "manifest.yaml"
    config.write_text(yaml.safe_dump(data))
    manifest.write_text(yaml.safe_dump(ONE_SAMPLE))
    return config, manifest


def test_train_cli_runs_and_refuses_to_overwrite(tmp_path):
    config, manifest = small_files(tmp_path)
    args = ["train", "--config", str(config), "--manifest", str(manifest), "--out", str(tmp_path / "run"),
            "--max-steps", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "export" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoints" / "update-000001" / "state.json").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "--resume" in " ".join(again.output.split())


def test_train_cli_rejects_bad_steps(tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--max-steps", "0"])
    assert result.exit_code != 0 and "--max-steps" in " ".join(result.output.split())


@pytest.mark.slow
def test_tiny_preset_four_updates_under_three_minutes(tmp_path):
    start = time.perf_counter()
    result = runner.invoke(app, ["train", "--config", "configs/tiny.yaml", "--out", str(tmp_path / "run"),
                                 "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - start < 180


@pytest.mark.slow
def test_two_process_accelerate_launch_on_cpu(tmp_path):
    config, manifest = small_files(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "rl3dedit.cli.main", "train", "--config", str(config), "--manifest", str(manifest),
               "--out", str(tmp_path / "run"), "--max-steps", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written once (main process), one line per update

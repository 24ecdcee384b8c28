"""`rl3dedit train`: tiny runs through the CLI (one and two processes), the refusal to overwrite a run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from typer.testing import CliRunner

from provenance_check import assert_records_versions
from rl3dedit.cli.main import app
from rl3dedit.config import load_config

runner = CliRunner()
ONE_SAMPLE = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                          "prompts": ["make it red"], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 8]]}]}


def small_files(tmp_path: Path, **rl) -> tuple[Path, Path]:
    data = load_config("tiny").model_dump(mode="json")
    data["views"]["view_size"] = 32
    data["rl"]["prepare_num_steps"] = 1
    data["rl"].update(rl)
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
    state = json.loads((tmp_path / "run" / "checkpoints" / "update-000001" / "state.json").read_text())
    assert_records_versions(state["provenance"])
    assert_records_versions(json.loads((tmp_path / "run" / "run.json").read_text())["provenance"])
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "--resume" in " ".join(again.output.split())
    resumed = runner.invoke(app, [*args[:-1], "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    # hparams are logged once, under a fixed name: no wall-clock-named folder per start or resume
    subfolders = sorted(p.name for p in (tmp_path / "run").rglob("*") if p.is_dir())
    assert not [name for name in subfolders if re.fullmatch(r"[0-9.]+", name)], subfolders
    assert subfolders.count("hparams") == 1, subfolders


def test_train_cli_rejects_bad_steps(tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--max-steps", "0"])
    assert result.exit_code != 0 and "--max-steps" in " ".join(result.output.split())


def test_paper_preset_without_weights_fails_fast(tmp_path):
    result = runner.invoke(app, ["train", "--preset", "paper", "--device", "cpu", "--out", str(tmp_path / "r"),
                                 "--max-steps", "1"])
    assert result.exit_code != 0
    assert "FLUX.1-Kontext" in " ".join(result.output.split())


def test_packaged_tiny_preset_trains_four_updates(tmp_path):
    """The issue's done-when run (`train --config configs/tiny.yaml --max-steps 4`); its time is in benchmarks/."""
    repo_config = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
    result = runner.invoke(app, ["train", "--config", str(repo_config), "--out", str(tmp_path / "run"),
                                 "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 4
    assert (tmp_path / "run" / "export" / "lora" / "pytorch_lora_weights.safetensors").is_file()


def test_two_process_accelerate_launch_on_cpu(tmp_path):
    """2 processes x 2 members equal 1 process with member chunks of 2 (rewards gathered, gradients averaged)."""
    from safetensors.torch import load_file

    config, manifest = small_files(tmp_path, rollout_batch_size=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # `--cpu` makes accelerate launch a single process; `--multi_gpu` on a GPU-less machine runs torchrun with 2
    # processes, and Accelerator(cpu=True) then uses MULTI_CPU (gloo).
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "rl3dedit.cli.main", "train", "--config", str(config), "--manifest", str(manifest),
               "--out", str(tmp_path / "run"), "--max-steps", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written once (main process), one line per update
    assert json.loads((tmp_path / "run" / "run.json").read_text())["num_processes"] == 2
    single = runner.invoke(app, ["train", "--config", str(config), "--manifest", str(manifest), "--out",
                                 str(tmp_path / "single"), "--max-steps", "2"])
    assert single.exit_code == 0, single.output
    two = load_file(str(tmp_path / "run" / "checkpoints" / "update-000002" / "trainable.safetensors"))
    one = load_file(str(tmp_path / "single" / "checkpoints" / "update-000002" / "trainable.safetensors"))
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6)


def test_train_cli_bf16_on_cpu_takes_the_precision_path_with_ratio_exactly_one(tmp_path):
    """`rl.mixed_precision: bf16` is honoured on CPU; rollouts and the update share the autocast, so ratio = 1."""
    config, manifest = small_files(tmp_path, mixed_precision="bf16")
    # a fresh process: accelerate's state is a per-process singleton and the other tests' runs are in float32
    command = [sys.executable, "-m", "rl3dedit.cli.main", "train", "--config", str(config), "--manifest",
               str(manifest), "--out", str(tmp_path / "run"), "--max-steps", "1"]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["mixed_precision"] == "bf16"
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["policy/ratio_min"] == 1.0 and first["policy/ratio_max"] == 1.0
    assert first["policy/clipfrac"] == 0.0

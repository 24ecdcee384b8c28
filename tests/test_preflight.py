"""The shared preflight: model resolution without loading, the CPU estimate, the memory plan, `--set` parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from rl3dedit.cli._common import resolve_config, resolve_views_input
from rl3dedit.config import load_config
from rl3dedit.preflight import GIB, KNOWN_PARAMETERS, check_model, memory_plan, parameter_counts, preflight


def test_meta_device_parameter_counts_match_the_quick_table():
    counts = parameter_counts()
    assert counts == KNOWN_PARAMETERS
    # The audit's figures (issue: FLUX 11.90 B, T5-XXL 4.76 B, CLIP-L 0.12 B, VAE 0.08 B, VGGT-1B 1.19 B).
    assert round(counts["flux_transformer"] / 1e9, 2) == 11.90 and round(counts["vggt_1b"] / 1e9, 2) == 1.19


def test_check_model_resolves_each_kind_without_loading(tmp_path: Path):
    cfg = load_config("tiny")
    assert check_model("editor", cfg).status == "random"
    folder = tmp_path / "flux"
    folder.mkdir()
    assert check_model("editor", cfg.override("editor.model", str(folder))).status == "missing"  # no model_index
    (folder / "model_index.json").write_text("{}")
    assert check_model("editor", cfg.override("editor.model", str(folder))).status == "local"
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"")
    assert check_model("verifier", cfg.override("verifier.model", str(weights))).status == "local"
    gone = check_model("verifier", cfg.override("verifier.model", str(tmp_path / "nope.pt")))
    assert gone.status == "missing" and "nope.pt" in gone.where
    # conftest sets HF_HUB_OFFLINE: an uncached hub id is missing at once, never retried.
    hub = check_model("verifier", cfg.override("verifier.model", "someone/not-cached-model"))
    assert hub.status == "missing" and "HF_HUB_OFFLINE" in hub.where
    assert check_model("lora", cfg).status == "unset"
    assert check_model("lpips", cfg).status == "random"  # tiny allows random LPIPS
    assert check_model("lpips", load_config("paper")).status == "missing"


def test_paper_preset_on_cpu_lists_every_problem_at_once(tmp_path: Path):
    cfg = load_config("paper").override("device", "cpu")
    check = preflight(cfg, command="edit", out_dir=tmp_path / "out", flags={"editor": "--editor-model",
                                                                              "verifier": "--verifier-model"}, fit=True)
    text = check.message()
    assert "editor.model" in text and "--editor-model PATH" in text
    assert "editor.transformer_file" in text and "--set editor.transformer_file=PATH" in text  # no flag given
    assert "verifier.model" in text and "--verifier-model PATH" in text
    assert "GPU-sized job" in text and "--force" in text
    assert check.estimate is not None and check.estimate.total_s > 3600 and "fit" in check.estimate.stages
    forced = preflight(cfg, command="edit", force=True, fit=True)
    assert not any("GPU-sized" in p for p in forced.problems) and any("--force" in n for n in forced.notes)


def test_tiny_preset_passes_and_names_its_random_models(tmp_path: Path):
    check = preflight(load_config("tiny"), command="edit", out_dir=tmp_path / "out", fit=True)
    assert check.problems == []
    assert check.random_models == ["FLUX.1-Kontext editor", "VGGT verifier"]


def test_memory_plan_follows_the_offload_setting():
    paper = load_config("paper")
    counts = KNOWN_PARAMETERS
    offloaded = {s.stage: s for s in memory_plan(paper, 24.0, counts)}
    resident = {s.stage: s for s in memory_plan(paper.override("editor.offload", "none"), 24.0, counts)}
    quantized = {s.stage: s for s in memory_plan(paper.override("editor.quantize", "int8"), 24.0, counts)}
    transformer_bf16 = counts["flux_transformer"] * 2 / GIB
    assert offloaded["edit"].weights_gib == pytest.approx(transformer_bf16, abs=0.01)  # 22.17 GiB
    everything = sum(counts[k] for k in ("flux_transformer", "t5_xxl", "clip_l", "vae")) * 2 / GIB
    assert resident["edit"].weights_gib == pytest.approx(everything, abs=0.01)
    assert resident["edit"].fits is False and "editor.offload=model" in resident["edit"].fix
    assert quantized["edit"].weights_gib == pytest.approx(transformer_bf16 / 2, abs=0.01)
    tiny = {s.stage: s for s in memory_plan(load_config("tiny"), 1.0, counts)}
    assert all(s.fits for s in tiny.values())


def test_set_overrides_any_field_and_rejects_unknown_ones():
    cfg = resolve_config("tiny", None, ["recon.refit_iters=7", "render.background=[0, 0, 0]"],
                         {"editor.num_steps": 2, "seed": None})
    assert cfg.recon.refit_iters == 7 and tuple(cfg.render.background) == (0, 0, 0) and cfg.editor.num_steps == 2
    with pytest.raises(typer.BadParameter, match="recon.no_such_field"):
        resolve_config("tiny", None, ["recon.no_such_field=1"])
    with pytest.raises(typer.BadParameter, match="KEY=VALUE"):
        resolve_config("tiny", None, ["recon.refit_iters"])


def test_views_input_finds_the_views_and_cameras_a_command_wrote(tmp_path: Path):
    run = tmp_path / "edit"
    (run / "views" / "edited").mkdir(parents=True)
    (run / "views" / "source").mkdir()
    (run / "views" / "edited" / "00.png").write_bytes(b"")
    (run / "views" / "source" / "00.png").write_bytes(b"")
    (run / "cameras.json").write_text("[]")
    assert resolve_views_input(run) == (run / "views" / "edited", run / "cameras.json")
    assert resolve_views_input(run, "source") == (run / "views" / "source", run / "cameras.json")
    render = tmp_path / "render"
    (render / "views").mkdir(parents=True)
    (render / "views" / "view_00_cam000.png").write_bytes(b"")
    assert resolve_views_input(render) == (render / "views", None)
    grid = tmp_path / "grid.png"
    assert resolve_views_input(grid) == (grid, None)


def test_a_cuda_device_without_cuda_is_a_problem_naming_the_flag():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    check = preflight(load_config("tiny").override("device", "cuda"), command="render", edit=False)
    assert any("--device cpu" in p for p in check.problems)

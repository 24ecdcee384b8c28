"""A whole tiny run with the real composite reward (tiny VGGT + random LPIPS), and its exports in the edit path."""

from __future__ import annotations

import torch

from rl3dedit.config import load_config
from rl3dedit.editor import KontextGridEditor, load_pipeline
from rl3dedit.rl import run_training


def test_tiny_run_with_composite_reward_exports_loadable_adapters(tmp_path):
    cfg = load_config("tiny")
    cfg = cfg.model_copy(update={
        "views": cfg.views.model_copy(update={"view_size": 32}),
        "rl": cfg.rl.model_copy(update={"prepare_num_steps": 1, "learning_rate": 0.05, "ema": False,
                                        "image_every": 1}),
    })
    manifest = tmp_path / "m.yaml"
    manifest.write_text("scenes:\n  - name: s\n    synthetic: {num_views: 12, size: 32, seed: 0}\n"
                        "    prompts: [make it red]\n    view_sets: [[0, 1, 2, 3, 4, 5, 6, 7, 8]]\n")
    result = run_training(cfg, tmp_path / "run", manifest=manifest, max_updates=2, export_merged=True)
    assert result.updates == 2
    metrics = result.history[-1]
    for term in ("depth", "point", "pose", "anchor"):
        assert f"reward/{term}" in metrics
    assert (tmp_path / "run" / "data" / "index.json").is_file()
    assert list((tmp_path / "run").glob("events.out.tfevents*")) or list((tmp_path / "run").rglob("events.out.*"))

    export = result.export_dir
    image = torch.rand(3, 96, 96)

    def edit(editor_config):
        pipe = load_pipeline(editor_config, "cpu")
        editor = KontextGridEditor(pipe, max_sequence_length=cfg.editor.max_sequence_length)
        return editor.sample(image, "make it red", num_steps=2, guidance_scale=2.5, seed=1).images

    base = edit(cfg.editor)
    with_lora = edit(cfg.editor.model_copy(update={"lora": str(export / "lora")}))
    merged = edit(cfg.editor.model_copy(update={"transformer_file": str(export / "transformer.safetensors")}))
    assert not torch.equal(base, with_lora), "the trained adapter changed nothing"
    torch.testing.assert_close(with_lora, merged, atol=1e-4, rtol=1e-4)

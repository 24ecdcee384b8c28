"""Conformance of our VGGT with the official implementation (fixtures found via `shared_dir`) and model invariants."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rl3dedit.geometry.vggt import (
    VGGT,
    VGGTConfig,
    build_from_state_dict,
    build_tiny_vggt,
    load_vggt,
    pose_encoding_to_extri_intri,
    unproject_depth_map_to_point_map,
)
from rl3dedit.geometry.vggt.config import AggregatorConfig, CameraHeadConfig, DinoConfig, DPTHeadConfig

FIXTURE_ROOT = Path("fixtures/vggt")


def _fixture_names() -> list[str]:
    """Every conformance fixture folder present at collection time (tiny_a, and fixture B once it is dropped in)."""
    shared = Path(os.environ.get("RL3DEDIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    found = sorted(p.parent.name for p in (shared / FIXTURE_ROOT).glob("*/config.json"))
    return found or ["tiny_a"]


FIXTURE_NAMES = _fixture_names()


def _fixture_dir(shared_dir: Path, name: str) -> Path:
    path = shared_dir / FIXTURE_ROOT / name
    if not (path / "config.json").is_file():
        pytest.skip(f"VGGT fixture {name} not present in {path}")
    return path


def _all_outputs(model: VGGT, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every key stored by the fixtures, computed the way the fixture README describes."""
    with torch.no_grad():
        out = model(images)
    H, W = images.shape[-2:]
    extrinsic, intrinsic = pose_encoding_to_extri_intri(out.pose_enc, (H, W))
    result = {
        "pose_enc": out.pose_enc, "depth": out.depth, "depth_conf": out.depth_conf,
        "world_points": out.world_points, "world_points_conf": out.world_points_conf,
        "extrinsic": extrinsic, "intrinsic": intrinsic,
        "world_points_from_depth": unproject_depth_map_to_point_map(out.depth[0], extrinsic[0], intrinsic[0]),
    }
    result.update({f"pose_enc_list_{i}": p for i, p in enumerate(out.pose_enc_list)})
    return result


@pytest.fixture(scope="module", params=FIXTURE_NAMES)
def fixture(request: pytest.FixtureRequest, shared_dir: Path) -> tuple[Path, VGGT, torch.Tensor]:
    path = _fixture_dir(shared_dir, request.param)
    model = load_vggt(path / "weights.safetensors", config=path / "config.json")
    return path, model, load_file(str(path / "inputs.safetensors"))["images"]


def test_full_size_keys_and_shapes_match_vggt_1b(shared_dir: Path) -> None:
    rows = (shared_dir / FIXTURE_ROOT / "vggt_1b_state_dict.tsv").read_text().splitlines()[1:]
    expected = [(name, shape) for name, shape, _ in (row.split("\t") for row in rows)]
    with torch.device("meta"):
        model = VGGT(VGGTConfig())
    state = model.state_dict()
    assert all(t.is_meta for t in state.values())
    assert [(k, str(tuple(v.shape))) for k, v in state.items()] == expected  # same keys, shapes and order
    assert sum(p.numel() for p in model.parameters()) == 1_256_537_516


def test_reward_heads_parameter_count() -> None:
    with torch.device("meta"):
        model = VGGT(VGGTConfig(enable_point=False, enable_track=False))
    assert sum(p.numel() for p in model.parameters()) == 1_157_941_492  # upstream's count, docs/references.md §4


def test_fixture_outputs_fp32(fixture: tuple[Path, VGGT, torch.Tensor]) -> None:
    path, model, images = fixture
    tol = json.loads((path / "tolerance.json").read_text())
    ref = load_file(str(path / "outputs.safetensors"))
    mine = _all_outputs(model.float(), images)
    assert set(ref) <= set(mine)
    for key, value in ref.items():
        torch.testing.assert_close(mine[key], value, atol=tol["atol"], rtol=tol["rtol"], msg=lambda m: f"{key}: {m}")


def test_fixture_outputs_float64(fixture: tuple[Path, VGGT, torch.Tensor]) -> None:
    path, model, images = fixture
    ref = load_file(str(path / "outputs_float64.safetensors"))
    try:
        mine = _all_outputs(model.double(), images.double())
    finally:
        model.float()
    for key, value in ref.items():
        torch.testing.assert_close(mine[key].double(), value, atol=1e-5, rtol=1e-5, msg=lambda m: f"{key}: {m}")


def test_fixture_intermediates(fixture: tuple[Path, VGGT, torch.Tensor]) -> None:
    """Locates a mismatch: DINO position table, DINO patch tokens and every aggregator output."""
    path, model, images = fixture
    ref = load_file(str(path / "intermediates.safetensors"))
    agg = model.aggregator
    p = agg.cfg.patch_size
    H, W = images.shape[-2:]
    with torch.no_grad():
        table = agg.patch_embed.interpolate_pos_embed(H // p, W // p, torch.float32)
        patches = agg.patch_embed(agg.normalize(images[None])[0])
        tokens = agg(images[None]).tokens
    torch.testing.assert_close(table, ref["dino_pos_embed_interpolated"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(patches, ref["dino_patch_tokens"], atol=1e-4, rtol=1e-4)
    for i, t in enumerate(tokens):
        torch.testing.assert_close(t, ref[f"aggregator_tokens_{i}"], atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def tiny() -> VGGT:
    return build_tiny_vggt(seed=3)


def test_other_sizes_and_dpt_chunking(tiny: VGGT) -> None:
    """10 frames (> 8, so the DPT heads chunk), another image size: shapes, finiteness, chunking invariance."""
    images = torch.rand(10, 3, 28, 70, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tiny.frames_chunk_size = 3
        chunked = tiny(images)
        tiny.frames_chunk_size = None
        whole = tiny(images)
        tiny.frames_chunk_size = 8
    assert chunked.pose_enc.shape == (1, 10, 9) and len(chunked.pose_enc_list) == 4
    assert chunked.depth.shape == (1, 10, 28, 70, 1) and chunked.depth_conf.shape == (1, 10, 28, 70)
    assert chunked.world_points.shape == (1, 10, 28, 70, 3) and chunked.world_points_conf.shape == (1, 10, 28, 70)
    for key in ("depth", "depth_conf", "world_points", "world_points_conf"):
        assert torch.isfinite(chunked[key]).all()
        torch.testing.assert_close(chunked[key], whole[key], atol=1e-6, rtol=1e-6)
    assert (chunked.depth > 0).all() and (chunked.depth_conf >= 1).all()
    assert chunked.depth.std() > 1e-3 and chunked.depth_conf.std() > 1e-3


def test_batch_equals_separate_scenes(tiny: VGGT) -> None:
    images = torch.rand(2, 3, 3, 42, 42, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        both = tiny(images)
        first = tiny(images[0])  # 4-D input: B = 1 is added
    assert first.depth.shape == (1, 3, 42, 42, 1)
    torch.testing.assert_close(both.depth[:1], first.depth, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both.pose_enc[:1], first.pose_enc, atol=1e-5, rtol=1e-5)


def test_frame_zero_is_reference(tiny: VGGT) -> None:
    """Frame 0 gets its own special tokens, so reordering frames changes the predictions (not a permutation)."""
    images = torch.rand(3, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = tiny(images).pose_enc[0]
        b = tiny(images[[1, 0, 2]]).pose_enc[0]
    assert not torch.allclose(a[[1, 0, 2]], b, atol=1e-3)


def test_bf16_autocast_keeps_heads_fp32(tiny: VGGT) -> None:
    images = torch.rand(2, 3, 28, 42, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = tiny(images)
        tiny.amp_dtype = torch.bfloat16
        try:
            out = tiny.predict(images)
        finally:
            tiny.amp_dtype = None
    assert out.depth.dtype == torch.float32 and out.pose_enc.dtype == torch.float32
    assert (out.depth - ref.depth).abs().max() < 0.1 * ref.depth.abs().max()


def test_predict_inference_mode_and_errors(tiny: VGGT) -> None:
    tiny.train()
    out = tiny.predict(torch.rand(2, 3, 28, 28))
    assert tiny.training and out.depth.is_inference()
    tiny.eval()
    with pytest.raises(ValueError, match="multiples of 14"):
        tiny(torch.rand(2, 3, 30, 28))
    with pytest.raises(NotImplementedError, match="tracking"):
        tiny(torch.rand(2, 3, 28, 28), query_points=torch.zeros(1, 4, 2))
    with pytest.raises(KeyError, match="not a VGGT output"):
        out["pts3d"]


def test_training_mode_checkpointing_backprops() -> None:
    model = build_tiny_vggt(seed=0).train()
    model(torch.rand(2, 3, 28, 28)).depth.mean().backward()
    grad = model.aggregator.frame_blocks[0].attn.qkv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_other_architecture_variant() -> None:
    """Another architecture (aa_block_size 2, no DINO registers, no LayerScale in DINO, 3 camera iterations,
    other DPT widths and layers) builds, round-trips its state dict and predicts the documented shapes."""
    dpt = {"dim_in": 96, "features": 16, "out_channels": (8, 16, 24, 24), "intermediate_layer_idx": (1, 2, 3, 5)}
    config = replace(
        VGGTConfig.tiny(),
        aggregator=AggregatorConfig(img_size=42, embed_dim=48, depth=6, num_heads=2, num_register_tokens=3,
                                    aa_block_size=2, patch_embed=DinoConfig(img_size=42, embed_dim=48, depth=1,
                                                                            num_heads=3, num_register_tokens=0,
                                                                            init_values=None)),
        camera_head=CameraHeadConfig(dim_in=96, trunk_depth=1, num_heads=2, num_iterations=3),
        depth_head=DPTHeadConfig(output_dim=2, activation="exp", **dpt),
        point_head=DPTHeadConfig(output_dim=4, activation="inv_log", **dpt),
    )
    model = build_tiny_vggt(seed=1, config=config)
    assert model.aggregator.patch_embed.register_tokens is None
    images = torch.rand(1, 9, 3, 56, 28, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = model(images)
        again = build_from_state_dict(model.state_dict(), config)(images)
    assert len(out.pose_enc_list) == 3 and out.pose_enc.shape == (1, 9, 9)
    assert out.depth.shape == (1, 9, 56, 28, 1) and out.world_points.shape == (1, 9, 56, 28, 3)
    torch.testing.assert_close(again.depth, out.depth)

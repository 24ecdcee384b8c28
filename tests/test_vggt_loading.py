"""Loading VGGT weights: strict key checks, fail-fast errors, meta-device assignment, tiny models, the verifier."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from rl3dedit.geometry.config import VerifierConfig
from rl3dedit.geometry.vggt import VGGT, VGGTConfig, build_from_state_dict, build_tiny_vggt, load_verifier, load_vggt

IMAGES = torch.rand(2, 3, 28, 42, generator=torch.Generator().manual_seed(0))


def test_tiny_is_deterministic_per_seed() -> None:
    a, b, c = build_tiny_vggt(0), build_tiny_vggt(0), build_tiny_vggt(1)
    with torch.no_grad():
        da, db, dc = a(IMAGES).depth, b(IMAGES).depth, c(IMAGES).depth
    assert torch.equal(da, db) and not torch.allclose(da, dc)


def test_tiny_outputs_are_plausible() -> None:
    with torch.no_grad():
        out = build_tiny_vggt(0)(IMAGES)
    fov = out.pose_enc[..., 7:]
    assert (fov > 0.1).all() and (fov < 3.0).all()
    assert out.depth_conf.std() > 1e-3 and out.world_points_conf.std() > 1e-3 and out.depth.std() > 1e-3


def test_pt_round_trip_drops_track_keys(tmp_path: Path) -> None:
    config = dataclasses.replace(VGGTConfig.tiny(), enable_track=True)
    source = build_tiny_vggt(5, config)
    path = tmp_path / "model.pt"
    torch.save(source.state_dict(), path)
    loaded = load_vggt(path, config=VGGTConfig.tiny())  # enable_track=False: track_head.* keys are dropped
    assert loaded.track_head is None and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(IMAGES).depth, source(IMAGES).depth)
    with_track = load_vggt(path, config=VGGTConfig.tiny(), enable_track=True)
    assert with_track.track_head is not None
    feats = with_track.track_head.features(with_track.aggregator(IMAGES[None]).tokens, (28, 42), 5)
    assert feats.shape == (1, 2, 32, 14, 21)


def test_strict_error_lists_missing_and_unexpected(tmp_path: Path) -> None:
    state = build_tiny_vggt(0).state_dict()
    state.pop("camera_head.empty_pose_tokens")
    state["aggregator.bogus"] = torch.zeros(1)
    state["point_head.norm.weight"] = torch.zeros(7)
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    with pytest.raises(ValueError) as err:
        load_vggt(path, config=VGGTConfig.tiny())
    text = str(err.value)
    assert "missing keys (1)" in text and "camera_head.empty_pose_tokens" in text
    assert "unexpected keys (1)" in text and "aggregator.bogus" in text
    assert "point_head.norm.weight: checkpoint (7,)" in text and str(path) in text


def test_assigns_without_copy() -> None:
    state = build_tiny_vggt(0).state_dict()
    model = build_from_state_dict(state, VGGTConfig.tiny())
    assert model.aggregator.camera_token.data_ptr() == state["aggregator.camera_token"].data_ptr()
    assert not any(p.is_meta for p in model.parameters())


def test_missing_file_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_vggt(tmp_path / "nothing.pt")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_vggt(tmp_path)


def test_offline_hub_id_fails_fast_with_advice() -> None:
    """A repo id that cannot be in anyone's cache; the hub is offline in tests (conftest) or unreachable here."""
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="local path"):
        load_vggt("rl3dedit-test/absent-vggt")
    assert time.monotonic() - start < 20


def test_load_verifier_tiny_and_bf16() -> None:
    model = load_verifier(VerifierConfig(model="tiny", tiny_seed=2, frames_chunk_size=4), "cpu")
    assert isinstance(model, VGGT) and not model.training and model.frames_chunk_size == 4
    assert not any(p.requires_grad for p in model.parameters()) and model.amp_dtype is None
    with torch.no_grad():
        torch.testing.assert_close(model(IMAGES).depth, build_tiny_vggt(2)(IMAGES).depth)
    assert load_verifier(VerifierConfig(model="tiny", dtype="bfloat16")).amp_dtype == torch.bfloat16


def test_load_verifier_missing_weights_names_the_field() -> None:
    with pytest.raises(FileNotFoundError, match="verifier.model"):
        load_verifier(VerifierConfig(model="rl3dedit-test/absent-vggt"))

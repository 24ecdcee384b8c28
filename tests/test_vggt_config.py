"""VGGTConfig (fixture schema, defaults, round trip) and VerifierConfig validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from rl3dedit.geometry.config import VerifierConfig
from rl3dedit.geometry.vggt import VGGTConfig


def test_defaults_are_vggt_1b() -> None:
    cfg = VGGTConfig()
    assert cfg.aggregator.embed_dim == 1024 and cfg.aggregator.depth == 24 and cfg.aggregator.patch_start_idx == 5
    assert cfg.depth_head.output_dim == 2 and cfg.depth_head.activation == "exp"
    assert cfg.point_head.output_dim == 4 and cfg.point_head.activation == "inv_log"
    assert cfg.depth_head.intermediate_layer_idx == (4, 11, 17, 23)


def test_from_json_reads_fixture_and_matches_builtin_tiny(shared_dir: Path) -> None:
    cfg = VGGTConfig.from_json(shared_dir / "fixtures/vggt/tiny_a/config.json")
    tiny = VGGTConfig.tiny()
    assert cfg.aggregator == tiny.aggregator
    assert cfg.aggregator.patch_embed.num_register_tokens == 2 and cfg.aggregator.num_register_tokens == 4
    assert (cfg.camera_head, cfg.depth_head, cfg.point_head) == (tiny.camera_head, tiny.depth_head, tiny.point_head)
    assert not cfg.enable_track


def test_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    data = VGGTConfig.tiny().to_dict()
    data["derived"] = {"anything": 1}
    data["aggregator"]["future_option"] = True
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    assert VGGTConfig.from_json(path) == VGGTConfig.tiny()


def test_bad_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"aggregator": "oops"}))
    with pytest.raises(ValueError, match="bad.json"):
        VGGTConfig.from_json(path)
    path.write_text(json.dumps({"aggregator": {"patch_embed": {"type": "conv"}}}))
    with pytest.raises(ValueError, match="only 'dinov2'"):
        VGGTConfig.from_json(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        VGGTConfig.from_json(tmp_path / "missing.json")


def test_verifier_config_validation() -> None:
    assert VerifierConfig(image_size=56).image_size == 56
    with pytest.raises(ValidationError, match="multiple of 14"):
        VerifierConfig(image_size=500)
    with pytest.raises(ValidationError, match="frames_chunk_size"):
        VerifierConfig(frames_chunk_size=0)

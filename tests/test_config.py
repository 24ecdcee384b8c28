from pathlib import Path

import pytest

from rl3dedit.config import PRESETS, RunConfig, dump_config, load_config


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name: str, tmp_path: Path):
    config = load_config(name)
    assert config.name == name
    dumped = tmp_path / "resolved.yaml"
    dump_config(config, dumped)
    assert load_config(dumped) == config


def test_repo_configs_folder_holds_the_presets():
    repo_configs = Path(__file__).resolve().parents[1] / "configs"
    assert load_config(repo_configs / "tiny.yaml") == load_config("tiny")


def test_override_validates():
    config = load_config("tiny")
    assert config.override("editor.num_steps", 7).editor.num_steps == 7
    with pytest.raises(KeyError, match="no config field"):
        config.override("editor.num_stepz", 7)
    with pytest.raises(ValueError):
        config.override("editor.num_steps", 0)


def test_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\neditor: {num_steps: -3}\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: x\nvies: {}\n")
    with pytest.raises(ValueError, match="unknown.yaml"):
        load_config(unknown)
    with pytest.raises(ValueError, match="unknown preset"):
        load_config("huge")


def test_presets_differ_only_in_data():
    tiny, paper = load_config("tiny"), load_config("paper")
    assert type(tiny) is type(paper) is RunConfig
    assert paper.rl.group_size == 16 and paper.rl.num_steps == 12 and paper.rl.window_size == 4
    assert paper.rl.noise_level == pytest.approx(0.8)
    assert paper.rewards.weights == {"depth": 0.25, "point": 0.25, "pose": 0.25, "anchor": 0.25}

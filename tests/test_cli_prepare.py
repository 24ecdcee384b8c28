"""`rl3dedit prepare`: a tiny manifest, resumption (finished items skipped), and entry-naming manifest errors."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.config import load_config

runner = CliRunner()


def test_prepare_cli_writes_index_and_resumes(tmp_path):
    data = load_config("tiny").model_dump(mode="json")
    data["views"]["view_size"] = 32
    data["rl"]["prepare_num_steps"] = 1
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(data))
    manifest = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                            "prompts": ["make it red"], "view_sets": {"auto": 1}}]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    args = ["prepare", "--manifest", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "d"), "--config",
            str(tmp_path / "cfg.yaml")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "d" / "index.json").read_text())
    assert index["complete"] and index["order"] == ["s-v000-p000"]
    assert len(index["view_sets"]["s-v000"]["indices"]) == 9
    assert len(list((tmp_path / "d" / "samples" / "s-v000-p000").glob("anchor_*.png"))) == 9
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "2 items were already prepared" in " ".join(again.output.split())


def test_prepare_cli_names_the_bad_entry(tmp_path):
    (tmp_path / "m.yaml").write_text("scenes:\n  - name: a\n    synthetic: {}\n    prompts: ['']\n"
                                     "    view_sets: {auto: 1}\n")
    result = runner.invoke(app, ["prepare", "--manifest", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "d")])
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert "scenes[0].prompts" in text and "empty" in text

"""Checkpoints: atomic and pruned, and a stopped-then-resumed run ends bitwise identical to an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from rl3dedit.config import load_config
from rl3dedit.rewards import RewardBreakdown
from rl3dedit.rl import build_editor, list_checkpoints, parse_manifest, prepare_dataset, run_training

MANIFEST = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                        "prompts": ["make it red"], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 8]]}]}


def config():
    cfg = load_config("tiny")
    rl = cfg.rl.model_copy(update={"prepare_num_steps": 1, "checkpoint_every": 1, "keep_checkpoints": 1,
                                   "ema_interval": 1, "learning_rate": 1e-2, "lr_warmup_updates": 2})
    return cfg.model_copy(update={"views": cfg.views.model_copy(update={"view_size": 32}), "rl": rl})


def brightness(views, *, cameras, anchor_index, anchor_reference):
    value = views.mean(dim=(1, 2, 3, 4))
    return RewardBreakdown(total=value, terms={"brightness": value})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    cfg = config()
    root = tmp_path_factory.mktemp("data")
    prepare_dataset(cfg, parse_manifest(MANIFEST), root, editor=build_editor(cfg, "cpu"))
    return root


def test_resumed_run_is_bitwise_identical(data_dir, tmp_path):
    cfg = config()
    straight = run_training(cfg, tmp_path / "straight", data_dir=data_dir, max_updates=2, reward_fn=brightness)
    first = run_training(cfg, tmp_path / "resumed", data_dir=data_dir, max_updates=1, reward_fn=brightness)
    assert first.updates == 1
    with pytest.raises(FileExistsError, match="--resume"):
        run_training(cfg, tmp_path / "resumed", data_dir=data_dir, max_updates=2, reward_fn=brightness)
    resumed = run_training(cfg, tmp_path / "resumed", data_dir=data_dir, max_updates=2, reward_fn=brightness,
                           resume=True)
    assert straight.updates == resumed.updates == 2
    a = list_checkpoints(tmp_path / "straight")
    b = list_checkpoints(tmp_path / "resumed")
    assert [p.name for p in a] == [p.name for p in b] == ["update-000002"]  # keep_checkpoints=1 pruned update-1
    for name in ("trainable.safetensors", "ema.safetensors"):
        wa, wb = load_file(str(a[-1] / name)), load_file(str(b[-1] / name))
        assert wa.keys() == wb.keys()
        different = [k for k in wa if not torch.equal(wa[k], wb[k])]
        assert not different, f"{name}: tensors differ after resume: {different[:3]}"
    opt_a = torch.load(a[-1] / "optimizer.pt", weights_only=True)["state"]
    opt_b = torch.load(b[-1] / "optimizer.pt", weights_only=True)["state"]
    assert all(torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"]) for k in opt_a)
    # the resumed run continued the metrics of the same updates
    untimed = [[{k: v for k, v in m.items() if not k.startswith("time/")} for m in h]
               for h in (straight.history[1:], resumed.history)]
    assert untimed[0] == untimed[1]
    assert not any(p.name.startswith(".") for p in (tmp_path / "resumed" / "checkpoints").iterdir())

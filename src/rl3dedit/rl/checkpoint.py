"""Complete, atomic training checkpoints and exact resume.

A checkpoint folder `checkpoints/update-NNNNNN/` holds:
    trainable.safetensors   the trainable (LoRA) parameters by name, exact values (what resume loads)
    ema.safetensors         the EMA shadow weights (same names), when EMA is on
    optimizer.pt            AdamW state dict (torch.save; loaded with weights_only=True)
    scheduler.pt            LR scheduler state dict
    rng.pt                  torch CPU (and CUDA) RNG, numpy and python `random` states of this process
    state.json              update count, data position, EMA update count, window settings, versions
    config.yaml             the resolved run config
    lora/                   the adapter in diffusers/peft format (raw weights; the edit path loads it)
The folder is written under a temporary name and renamed; only the newest `keep` checkpoints are kept. The trainer
owns no persistent generator: rollout, anchor and window generators are re-derived from (seed, update, ...), so the
state above is all a resumed run needs to continue bit for bit.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import save_file

from rl3dedit.errors import InputError
from rl3dedit.files import atomic_dir, dumps_json, read_json, read_torch_file, read_weights
from rl3dedit.provenance import provenance
from rl3dedit.rl.ema import EMAState

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^update-(\d{6,})$")


@dataclass
class CheckpointState:
    """What a checkpoint restores besides tensors: `update` optimiser updates done (= next update index),
    `samples_seen` the data position, `extra` free-form JSON metadata."""

    update: int
    samples_seen: int
    extra: dict


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Finished checkpoints, oldest first (temporary folders are ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _rng_states() -> dict:
    np_state = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_meta": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    name, pos, has_gauss, cached = states["numpy_meta"]
    np.random.set_state((name, states["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: Path, *, state: CheckpointState, named_params: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                    ema: EMAState | None, config: RunConfig, editor=None, keep: int = 2) -> Path:
    """Write checkpoint `update-<state.update>` atomically and prune to the newest `keep`. Returns its folder."""
    final = checkpoint_dir(run_dir) / f"update-{state.update:06d}"
    with atomic_dir(final) as tmp:
        save_file({k: p.detach().contiguous().cpu() for k, p in named_params.items()}, str(tmp / "trainable.safetensors"))
        if ema is not None:
            save_file({k: t.contiguous().cpu() for k, t in zip(named_params, ema.shadow, strict=True)},
                      str(tmp / "ema.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(_rng_states(), tmp / "rng.pt")
        meta = {"update": state.update, "samples_seen": state.samples_seen,
                "ema_updates": ema.num_updates if ema is not None else None, "provenance": provenance(), **state.extra}
        (tmp / "state.json").write_text(dumps_json(meta, indent=1))
        from rl3dedit.config import dump_config

        dump_config(config, tmp / "config.yaml")
        if editor is not None:
            editor.save_lora(tmp / "lora")
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old)
    logger.info("checkpoint written: %s", final)
    return final


def load_checkpoint(path: Path, *, named_params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, ema: EMAState | None) -> CheckpointState:
    """Restore everything `save_checkpoint` wrote into the given live objects (parameters copied in place)."""
    path = Path(path)
    weights = read_weights(path / "trainable.safetensors", "checkpoint weights file")
    missing = sorted(set(named_params) - set(weights))
    unexpected = sorted(set(weights) - set(named_params))
    if missing or unexpected:
        raise ValueError(f"{path}: trainable parameters do not match the model (missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}); was the checkpoint written with another rl.lora_* setting?")
    with torch.no_grad():
        for name, param in named_params.items():
            if weights[name].shape != param.shape:
                raise ValueError(f"{path}: {name} has shape {tuple(weights[name].shape)}, the model expects "
                                 f"{tuple(param.shape)}")
            param.copy_(weights[name])
    optimizer.load_state_dict(read_torch_file(path / "optimizer.pt", "optimizer state"))
    scheduler.load_state_dict(read_torch_file(path / "scheduler.pt", "scheduler state"))
    meta = read_json(path / "state.json", "checkpoint state")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), int) for k in ("update", "samples_seen")):
        raise InputError(f"{path / 'state.json'}: expected a JSON object with integer 'update' and 'samples_seen'")
    if ema is not None:
        ema_file = path / "ema.safetensors"
        if not ema_file.is_file():
            raise ValueError(f"{path}: no ema.safetensors, but rl.ema is on")
        shadow = read_weights(ema_file, "EMA weights file")
        for name, tensor in zip(named_params, ema.shadow, strict=True):
            tensor.copy_(shadow[name])
        ema.num_updates = int(meta["ema_updates"])
    _set_rng_states(read_torch_file(path / "rng.pt", "random-number state"))
    extra = {k: v for k, v in meta.items() if k not in ("update", "samples_seen", "ema_updates", "torch")}
    return CheckpointState(update=int(meta["update"]), samples_seen=int(meta["samples_seen"]), extra=extra)

"""Building and loading VGGT: real checkpoints (local or hub), tiny random models, the configured verifier.

Checkpoints are flat state dicts with the upstream key names (docs/references.md §4): `model.pt`
(read with `torch.load(weights_only=True)`) or `.safetensors`. The model is built on the meta device and the
loaded tensors are assigned, so no random weights are ever allocated.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from rl3dedit.files import read_weights
from rl3dedit.geometry.config import VerifierConfig
from rl3dedit.geometry.vggt.config import VGGTConfig
from rl3dedit.geometry.vggt.layers import LayerScale
from rl3dedit.geometry.vggt.model import VGGT

__all__ = ["HUB_IDS", "load_vggt", "load_state_dict_file", "build_from_state_dict", "build_tiny_vggt", "load_verifier"]

logger = logging.getLogger(__name__)

HUB_IDS = ("facebook/VGGT-1B", "facebook/VGGT-1B-Commercial")
"""Known hub repositories with VGGT-1B weights (same keys); other `owner/name` ids are tried too."""
_HUB_FILES = ("model.safetensors", "model.pt")
_TRACK_PREFIX = "track_head."
_LIST_LIMIT = 20


def _hub_download(repo_id: str) -> Path:
    """Weights of a hub repo (safetensors preferred): the local cache first, then the network (`rl3dedit.hub`: an
    overall deadline and a message saying what failed). Raises `HubError` saying what to pass instead."""
    from rl3dedit.hub import HubFileMissingError, cached_path, hub_file

    for filename in _HUB_FILES:
        cached = cached_path(repo_id, filename)
        if cached is not None:
            return cached
    hint = (f"download model.pt from https://huggingface.co/{repo_id} elsewhere and pass its local path with "
            "--verifier-model /path/to/model.pt (config: verifier.model), or --verifier-model tiny for a random "
            "model (a pipeline check only)")
    for filename in _HUB_FILES[:-1]:
        try:
            return hub_file(repo_id, filename, what="VGGT weights", hint=hint)
        except HubFileMissingError:
            continue
    return hub_file(repo_id, _HUB_FILES[-1], what="VGGT weights", hint=hint)


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        for filename in _HUB_FILES:
            if (path / filename).is_file():
                return path / filename
        raise FileNotFoundError(f"VGGT weights folder {path} holds neither {' nor '.join(_HUB_FILES)}")
    if path.is_file():
        return path
    text = str(name_or_path)
    looks_local = path.suffix in {".pt", ".pth", ".safetensors"} or text.startswith((".", "/", "~"))
    if looks_local or text.count("/") != 1:
        raise FileNotFoundError(
            f"VGGT weights {text!r} do not exist; pass a local model.pt / .safetensors path or a hub id such as "
            f"{HUB_IDS[0]!r}"
        )
    return _hub_download(text)


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a flat state dict from `.safetensors` or a torch file (`weights_only=True`, memory-mapped); a corrupt,
    empty, pickled-code or non-finite file raises `rl3dedit.errors.InputError` naming it (`files.read_weights`)."""
    return read_weights(path, "VGGT weights file", mmap=True)


def _check_keys(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Fail with the missing, unexpected and mis-shaped keys listed (strict loading, nanoGPT-style)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {expected[k]}"
                    for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if not (missing or unexpected or shapes):
        return

    def listing(title: str, items: list[str]) -> str:
        more = f"\n    ... and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
        return f"\n  {title} ({len(items)}):\n    " + "\n    ".join(items[:_LIST_LIMIT]) + more

    text = "".join(listing(t, i) for t, i in (("missing keys", missing), ("unexpected keys", unexpected),
                                              ("shape mismatches", shapes)) if i)
    raise ValueError(f"{source} does not match the VGGT architecture (pass the matching VGGTConfig via "
                     f"`config=`):{text}")


def build_from_state_dict(state: Mapping[str, Tensor], config: VGGTConfig, *, source: str = "state dict",
                          device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                          amp_dtype: torch.dtype | None = None) -> VGGT:
    """Build on the meta device, check every key and shape, assign the tensors, move to `device`/`dtype`."""
    with torch.device("meta"):
        model = VGGT(config, amp_dtype=amp_dtype)
    _check_keys(model, state, source)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def load_vggt(name_or_path: str | Path, *, config: VGGTConfig | str | Path | None = None,
              device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, enable_track: bool = False,
              amp_dtype: torch.dtype | None = None) -> VGGT:
    """Load VGGT weights into our model, in eval mode.

    Args:
        name_or_path: a local `model.pt` / `.safetensors` file, a folder holding one, or a hub id
            (`facebook/VGGT-1B`, `facebook/VGGT-1B-Commercial`). A hub id is resolved with
            `huggingface_hub.hf_hub_download`; when that is impossible (offline, no network, gated) this raises
            FileNotFoundError at once, saying to pass a local path.
        config: architecture (VGGTConfig or a fixture-style JSON path). Default: `config.json` beside a local
            weights file if present, else VGGT-1B.
        dtype: parameter dtype. amp_dtype: autocast dtype for the aggregator (e.g. torch.bfloat16 on GPU).
        enable_track: build the track head and require its keys. When False, `track_head.*` keys in the file are
            dropped (logged) and every other key must match exactly.
    Returns:
        VGGT on `device` in eval mode.
    """
    path = _resolve(name_or_path)
    if config is None:
        sidecar = path.with_name("config.json")
        config = VGGTConfig.from_json(sidecar) if sidecar.is_file() else VGGTConfig()
    elif not isinstance(config, VGGTConfig):
        config = VGGTConfig.from_json(config)
    config = dataclasses.replace(config, enable_track=enable_track)
    state = load_state_dict_file(path)
    if not enable_track:
        track = [k for k in state if k.startswith(_TRACK_PREFIX)]
        if track:
            logger.info("%s: dropping %d track_head.* tensors (track head disabled)", path, len(track))
            state = {k: v for k, v in state.items() if not k.startswith(_TRACK_PREFIX)}
    return build_from_state_dict(state, config, source=str(path), device=device, dtype=dtype, amp_dtype=amp_dtype)


def _init_tiny(model: nn.Module, generator: torch.Generator) -> None:
    """Deterministic, non-degenerate random weights (in module order) so depth, points and confidences vary.

    Linear / conv weights N(0, 1/fan_in), biases N(0, 0.02^2), LayerNorm weights 1 + N(0, 0.1^2), LayerScale
    gammas 0.3 + N(0, 0.05^2), learned tokens and position tables N(0, 0.5^2). The last DPT convs are scaled down
    so exp-activated depth and confidences stay in a moderate range, and the camera head's last layer is biased
    towards identity rotations and 1-rad fields of view.
    """
    def normal(t: Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=generator) * std + mean)

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = module.weight
            # A stride-k, kernel-k transposed conv feeds each output pixel from `in_channels` inputs.
            fan_in = w.shape[0] if isinstance(module, nn.ConvTranspose2d) else w[0].numel()
            normal(w, (0.2 if name.endswith("output_conv2.2") else 1.0) / math.sqrt(fan_in))
            if module.bias is not None:
                normal(module.bias, 0.02)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)) and module.weight is not None:
            normal(module.weight, 0.1, 1.0)
            normal(module.bias, 0.02)
        elif isinstance(module, LayerScale):
            normal(module.gamma, 0.05, 0.3)
        else:
            for p in module.parameters(recurse=False):
                normal(p, 0.5)
    if isinstance(model, VGGT) and model.camera_head is not None:
        # Raw poses accumulate over the iterations: small deltas around identity rotation and ~1 rad FoVs
        # keep the decoded cameras plausible (positive FoVs, finite intrinsics).
        last = model.camera_head.pose_branch.fc2
        normal(last.weight, 0.2 / math.sqrt(last.weight.shape[1]))
        n_iter = model.camera_head.cfg.num_iterations
        last.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=last.bias.dtype) / n_iter)


def build_tiny_vggt(seed: int = 0, config: VGGTConfig | None = None) -> VGGT:
    """A small random VGGT (default: the tiny_a fixture architecture, ~1.6 M parameters) in eval mode, on CPU.

    Same code paths as VGGT-1B; weights depend only on `seed` (and the config), so reward values are reproducible.
    """
    model = VGGT(config or VGGTConfig.tiny())
    with torch.no_grad():
        _init_tiny(model, torch.Generator().manual_seed(seed))
    return model.eval()


def load_verifier(config: VerifierConfig, device: str | torch.device = "cpu") -> VGGT:
    """The frozen VGGT named by the run config: `tiny` (random, `tiny_seed`) or real weights (path or hub id).

    Parameters stay float32; `dtype: bfloat16` runs the aggregator under bf16 autocast (docs/references.md §4).
    Returns the model in eval mode with `requires_grad_(False)`.
    """
    amp = torch.bfloat16 if config.dtype == "bfloat16" else None
    if config.model == "tiny":
        model = build_tiny_vggt(config.tiny_seed).to(device)
        model.amp_dtype = amp
    else:
        model = load_vggt(config.model, config=config.config, device=device, amp_dtype=amp)
    model.frames_chunk_size = config.frames_chunk_size
    return model.eval().requires_grad_(False)

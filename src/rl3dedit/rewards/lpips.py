"""Our LPIPS, AlexNet v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric").

Why our own: the `lpips` PyPI package imports torchvision, which cannot be installed beside this torch build.
The network is the same design, with parameter names that match the public weight files so they load as-is:

- backbone: torchvision's `alexnet().features` convolutions `features.{0,3,6,8,10}` (11x11/4 pad 2 -> 64,
  5x5 pad 2 -> 192, 3x3 pad 1 -> 384, 256, 256, max-pool 3/2 after the first two), tapped after each ReLU;
- input: images in [0, 1] mapped to [-1, 1], then LPIPS's scaling layer (x - shift) / scale with
  shift = [-.030, -.088, -.188], scale = [.458, .448, .450];
- each tap is unit-normalised over channels, the squared difference is weighted by a non-negative 1x1
  convolution `lin{k}.model.1.weight` (1, C_k, 1, 1), averaged over space and summed over the 5 layers.

Weight files (all read with safetensors or `torch.load(weights_only=True)`):
- one combined file with `features.*` and `lin*` keys (written by `save_lpips`), or
- torchvision's `alexnet` state dict (its `classifier.*` keys are ignored) plus the lpips package's
  `weights/v0.1/alex.pth` (the `lin*` keys).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from rl3dedit.files import atomic_path

__all__ = ["LPIPS", "load_lpips", "save_lpips"]

logger = logging.getLogger(__name__)

_CHANNELS = (64, 192, 384, 256, 256)
_TAPS = (1, 4, 7, 9, 11)
"""Indices of the ReLUs in `features` whose outputs LPIPS compares."""


class _LinearHead(nn.Module):
    """LPIPS's `NetLinLayer`: dropout then a bias-free 1x1 conv; `model.1.weight` is the checkpoint key."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """LPIPS distance with an AlexNet backbone (see the module docstring); always in eval mode, no gradients needed.

    `forward(x (B, 3, H, W), y (B, 3, H, W))` with images in [0, 1] returns (B,) distances >= 0 (0 for identical
    images). H and W of at least 32 px keep every layer non-empty.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )
        for k, channels in enumerate(_CHANNELS):
            self.add_module(f"lin{k}", _LinearHead(channels))
        # Constants of the LPIPS scaling layer; not checkpoint entries, so not persistent.
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.eval()
        self.requires_grad_(False)

    def _taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images * 2 - 1) - self.shift) / self.scale
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _TAPS:
                taps.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS inputs have shapes {tuple(x.shape)} and {tuple(y.shape)}, "
                             f"expected two equal (B, 3, H, W)")
        dtype = self.features[0].weight.dtype
        total = x.new_zeros(x.shape[0], dtype=dtype)
        for k, (fx, fy) in enumerate(zip(self._taps(x.to(dtype)), self._taps(y.to(dtype)))):
            head = getattr(self, f"lin{k}")
            total = total + head.model((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from rl3dedit.files import read_weights

    return read_weights(path, "LPIPS weights file")


def _random_init(model: LPIPS, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
        for k in range(len(_CHANNELS)):
            weight = getattr(model, f"lin{k}").model[1].weight
            # ~0.1 per channel, the magnitude of the released v0.1 weights, so random distances land near real ones.
            weight.uniform_(0, 0.2, generator=generator)


def load_lpips(
    weights: str | Path | None = None,
    backbone_weights: str | Path | None = None,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> LPIPS:
    """Build LPIPS from local files, or with seeded random weights when `weights` is None.

    Args:
        weights: a combined file (`features.*` + `lin*`), or lin-only weights (`alex.pth`) with `backbone_weights`.
        backbone_weights: torchvision `alexnet` state dict; only with lin-only `weights`.
        seed: seed of the random weights (no files given).

    Every expected key must be present with its shape; unexpected keys are an error except torchvision's
    `classifier.*`. Lin weights must be non-negative (LPIPS clamps them in training; a negative one means a
    wrong file).
    """
    model = LPIPS()
    if weights is None:
        if backbone_weights is not None:
            raise ValueError("backbone_weights needs the LPIPS lin weights too: pass weights=alex.pth")
        logger.warning("LPIPS uses random weights: the anchor reward is not perceptual; pass rewards.lpips_weights "
                       "(see docs/rewards.md) for real scoring")
        _random_init(model, seed)
        return model.to(device)
    state = dict(_read_state_dict(Path(weights)))
    if not any(key.startswith("features.") for key in state):
        if backbone_weights is None:
            raise ValueError(f"{weights} holds no `features.*` backbone keys; pass backbone_weights= torchvision's "
                             f"alexnet state dict, or a combined file written by save_lpips")
        state.update(_read_state_dict(Path(backbone_weights)))
    source = f"{weights}" + (f" + {backbone_weights}" if backbone_weights else "")
    state = {key: value for key, value in state.items() if not key.startswith("classifier.")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"LPIPS weights {source}: missing keys {missing}, unexpected keys {unexpected}")
    wrong = {k: (tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape}
    if wrong:
        raise ValueError(f"LPIPS weights {source}: shape mismatches (found, expected) {wrong}")
    negative = [k for k in state if k.startswith("lin") and (state[k] < 0).any()]
    if negative:
        raise ValueError(f"LPIPS weights {source}: lin weights must be non-negative, {negative} are not")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device)


def save_lpips(model: LPIPS, path: str | Path) -> None:
    """Write one combined safetensors file (`features.*` + `lin*`), via a temporary file renamed into place."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))

"""Build rewards by name from the run configuration (the trainer, the edit pipeline and the ablations use this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from rl3dedit.geometry import VerifierConfig, load_verifier
from rl3dedit.render.config import RenderConfig
from rl3dedit.rewards.anchor import AnchorReward
from rl3dedit.rewards.composite import CompositeReward
from rl3dedit.rewards.config import RewardsConfig
from rl3dedit.rewards.consistency import ConsistencyReward
from rl3dedit.rewards.lpips import load_lpips
from rl3dedit.rewards.sfm import SfMReward
from rl3dedit.rewards.warp import WarpReward
from rl3dedit.scene import GaussianScene

__all__ = ["REWARD_NAMES", "RewardSettings", "build_composite_reward", "build_reward"]


class RewardSettings(Protocol):
    """The parts of a `RunConfig` rewards are built from."""

    rewards: RewardsConfig
    verifier: VerifierConfig
    render: RenderConfig


class _Defaults:
    rewards = RewardsConfig()
    verifier = VerifierConfig()
    render = RenderConfig()


def _vggt(settings: RewardSettings, device: torch.device | str, vggt: torch.nn.Module | None) -> torch.nn.Module:
    return vggt if vggt is not None else load_verifier(settings.verifier, torch.device(device))


def _consistency(settings, device, vggt, scene=None):
    return ConsistencyReward(_vggt(settings, device, vggt), confidence_transform=settings.rewards.confidence_transform,
                             image_size=settings.verifier.image_size,
                             preprocess_mode=settings.verifier.preprocess_mode)


def _warp(settings, device, vggt, scene=None):
    if scene is not None:  # the source scene's rendered depth: no verifier weights needed
        return WarpReward(scene=scene, depth_rel_threshold=settings.rewards.depth_rel_threshold,
                          render_chunk_size=settings.render.chunk_size)
    return WarpReward(_vggt(settings, device, vggt), image_size=settings.verifier.image_size,
                      depth_rel_threshold=settings.rewards.depth_rel_threshold)


def _sfm(settings, device, vggt, scene=None):
    return SfMReward()


def _anchor(settings, device, vggt, scene=None):
    if settings.rewards.lpips_weights is None and not settings.rewards.allow_random_lpips:
        raise FileNotFoundError(
            "the anchor reward needs LPIPS weights: set rewards.lpips_weights to the lpips package's alex.pth "
            "together with rewards.lpips_backbone_weights (torchvision's alexnet state dict), or to a combined "
            "file from rl3dedit.rewards.save_lpips; rewards.allow_random_lpips=true accepts random weights "
            "(pipeline checks only; see docs/rewards.md)")
    lpips = load_lpips(settings.rewards.lpips_weights, settings.rewards.lpips_backbone_weights, device=device)
    return AnchorReward(lpips, settings.rewards.anchor_lambda)


def _composite(settings, device, vggt, scene=None):
    anchor = _anchor(settings, device, vggt)  # first: a missing LPIPS file fails before VGGT-1B is loaded
    view_reward = _BUILDERS[settings.rewards.view_reward](settings, device, vggt, scene)
    return CompositeReward(view_reward, anchor, settings.rewards.weights)


_BUILDERS: dict[str, Callable] = {
    "consistency": _consistency,
    "sfm": _sfm,
    "warp": _warp,
    "anchor": _anchor,
    "composite": _composite,
}
REWARD_NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""Names `build_reward` accepts."""


def build_reward(
    name_or_config: str | RewardSettings,
    settings: RewardSettings | None = None,
    *,
    device: torch.device | str = "cpu",
    vggt: torch.nn.Module | None = None,
    scene: GaussianScene | None = None,
):
    """A reward by name (`consistency`, `sfm`, `warp`, `anchor`, `composite`), or the composite for a config.

    Args:
        name_or_config: a name from `REWARD_NAMES`, or a `RunConfig`-like object (sections `rewards`, `verifier`),
            which gives its `CompositeReward`.
        settings: the `RunConfig`-like object a name is built from; None = the default sections.
        device: where VGGT and LPIPS run.
        vggt: an already-loaded verifier to reuse instead of loading `settings.verifier`.
        scene: the source scene the views come from; `warp` then takes its rendered depth instead of VGGT's
            (no verifier weights needed).
    """
    if not isinstance(name_or_config, str):
        return build_composite_reward(name_or_config, device, vggt=vggt, scene=scene)
    if name_or_config not in _BUILDERS:
        raise ValueError(f"unknown reward {name_or_config!r}; valid names: {', '.join(REWARD_NAMES)}")
    return _BUILDERS[name_or_config](settings if settings is not None else _Defaults(), device, vggt, scene)


def build_composite_reward(
    config: RewardSettings, device: torch.device | str = "cpu", *, vggt: torch.nn.Module | None = None,
    scene: GaussianScene | None = None,
) -> CompositeReward:
    """The training reward of a run: `rewards.view_reward` + anchor reward with `rewards.weights` (paper Eq. 4)."""
    return _composite(config, device, vggt, scene)

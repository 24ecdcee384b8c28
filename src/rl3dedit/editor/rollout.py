"""Records of editor samples: `Condition` (what the transformer sees besides the noisy latents), `Rollout`
(everything a GRPO update needs, without re-encoding), `StepLogProb` (one recomputed step) and `EditResult` (a grid
edit split back into views)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass
class Condition:
    """Everything the transformer sees besides the noisy latents; computed once per (prompt, image) and shared by the
    members of a rollout. Tensors have 1 row when shared by every member, or B rows (broadcast at use)."""

    prompt_embeds: Tensor
    """(1 or B, T, D) T5 sequence embeddings, model dtype."""
    pooled_prompt_embeds: Tensor
    """(1 or B, D_pool) CLIP pooled embedding."""
    text_ids: Tensor
    """(T, 3) text position ids (zeros)."""
    image_latents: Tensor
    """(1 or B, L_img, C) packed conditioning image latents (VAE-encoded once)."""
    image_ids: Tensor
    """(L_img, 3) position ids of the conditioning tokens (first coordinate 1)."""
    latent_ids: Tensor
    """(L, 3) position ids of the target tokens (first coordinate 0)."""
    guidance_scale: float
    """Embedded guidance scale (no true CFG)."""
    height: int
    width: int

    def select(self, index: Tensor, size: int) -> Condition:
        """The condition of the members `index` (long tensor) of a batch of `size`: B-row tensors are indexed."""
        updates = {}
        for name in ("image_latents", "prompt_embeds", "pooled_prompt_embeds"):
            value = getattr(self, name)
            if value.shape[0] == size > 1:
                updates[name] = value.index_select(0, index.to(value.device))
        return replace(self, **updates)


@dataclass
class Rollout:
    """G sampled edits of one condition (instruction + source grid), with their recorded SDE window.

    Per-member fields have B rows; condition fields have 1 row when shared by every member (broadcast at use).
    Latents are packed FLUX tokens (L = (H/16)·(W/16) target tokens, C = 64 channels for the real model).
    """

    images: Tensor
    """(B, 3, H, W) decoded outputs in [0, 1]."""
    latents: Tensor
    """(B, K+1, L, C) fp32 packed latents of the recorded steps: latents[:, j] is the input x of recorded step j and
    latents[:, j+1] its output (the window steps are consecutive). (B, 0, L, C) when nothing was recorded (K = 0)."""
    final_latents: Tensor
    """(B, L, C) fp32 packed latents after the last step (what was decoded)."""
    log_probs: Tensor
    """(B, K) fp32 log-probs of the recorded steps under the sampling policy (mean over elements)."""
    sigmas: Tensor
    """(K, 2) fp32 (sigma, sigma_next) of each recorded step, stored explicitly (never looked up later)."""
    timesteps: Tensor
    """(K,) fp32 transformer timesteps (sigma·1000) of the recorded steps."""
    step_indices: list[int]
    """Which of the num_steps steps were recorded (the SDE window)."""
    condition: Condition
    """The sampler's condition (prompt embeddings, conditioning latents, ids, guidance scale, output size)."""
    noise_level: float
    """SDE noise level a used inside the window (0: ODE everywhere, nothing recorded)."""
    seeds: list[int]
    """Per member: the seed of its `torch.Generator("cpu")` (initial noise and SDE noise)."""
    num_steps: int
    """Total denoising steps T of the sampling run."""
    batch_size: int
    """Members per transformer call during sampling; recompute log-probs with the same chunks for bit-exact ratios."""
    prompt: str = ""
    """The prompt text the embeddings came from (bookkeeping only)."""

    @property
    def group_size(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return self.condition.height

    @property
    def width(self) -> int:
        return self.condition.width

    @property
    def num_recorded(self) -> int:
        """K, the number of recorded (trainable) steps."""
        return len(self.step_indices)

    def member_chunks(self) -> list[list[int]]:
        """The member index chunks that shared a transformer call at sampling time."""
        size = self.group_size
        return [list(range(i, min(i + self.batch_size, size))) for i in range(0, size, self.batch_size)]

    def select(self, members: list[int]) -> Rollout:
        """A sub-batch with the given members (condition fields stay shared when they have one row)."""
        size = self.group_size
        if not members or any(not 0 <= m < size for m in members):
            raise ValueError(f"members must be a non-empty list of indices in 0..{size - 1}, got {members}")
        index = torch.as_tensor(members, dtype=torch.long)
        updates: dict[str, object] = {"seeds": [self.seeds[m] for m in members],
                                      "condition": self.condition.select(index, size),
                                      "batch_size": min(self.batch_size, len(members))}
        for name in ("images", "latents", "final_latents", "log_probs"):
            value = getattr(self, name)
            updates[name] = value.index_select(0, index.to(value.device))
        return replace(self, **updates)


@dataclass
class StepLogProb:
    """One recorded step recomputed with the current transformer (`KontextGridEditor.log_prob`)."""

    log_prob: Tensor
    """(B,) fp32 log N(x_{j+1}; mu, std²), mean over elements; carries gradients to the trainable weights."""
    mean: Tensor
    """(B, L, C) fp32 mean mu of the step's Gaussian."""
    std: Tensor
    """(B, 1, 1) fp32 per-step scale s = std_dev_t·√(sigma - sigma_next)."""
    sigma: Tensor
    """(B, 1, 1) fp32 sigma of the step."""
    sigma_next: Tensor
    """(B, 1, 1) fp32 sigma_next of the step."""

    @property
    def std_dev_t(self) -> Tensor:
        """(B, 1, 1) the SDE's std_dev_t = std / √(sigma - sigma_next) (Flow-GRPO divides its KL by its square)."""
        return self.std / torch.sqrt(self.sigma - self.sigma_next)


@dataclass
class EditResult:
    """A grid edit of V views (`KontextGridEditor.edit_views`)."""

    views: Tensor
    """(V, 3, H, W) edited views in [0, 1], in the input's view order (row-major grid order)."""
    grid: Tensor
    """(3, GH, GW) edited grid in [0, 1]."""
    source_grid: Tensor
    """(3, GH, GW) the tiled source views that conditioned the edit."""
    prompt: str
    """The prompt sent to the model (the instruction after the grid template)."""
    seed: int

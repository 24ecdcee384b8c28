"""GRPO math for flow-matching policies: group advantages, the clipped surrogate, the KL penalty and diagnostics.

Pure functions of tensors; no model, no trainer state. What this is, exactly:

1. Advantages (the paper's group advantage): A_i = (R_i - mean_group(R)) / (std_group(R) + eps), the paper's
   per-group std. `std="batch"` gives Flow-GRPO's default instead (`global_std=True` in Flow-GRPO's configs,
   docs/references.md §3). Groups are explicit ids from the current batch only, never prompt strings with history
   (Flow-GRPO's stat tracker keys by prompt text). The std is the population std (unbiased=False), as in
   Flow-GRPO's `np.std`.
2. Zero-variance groups (every member scored the same) get advantage 0 and are reported in a mask so the trainer
   can skip their backward passes, as Flow-GRPO drops them; Flow-GRPO re-adds a few at random to
   keep batch counts divisible, which we do not need (our accumulation divides by the number actually used).
3. Objective (the paper's clipped objective, as in Flow-GRPO): per recorded step, ratio = exp(lp_new - lp_old) with
   lp the per-element-mean Gaussian log-prob; loss = max(-A·ratio, -A·clip(ratio, 1-eps, 1+eps)) with A clamped to
   ±adv_clip (Flow-GRPO: 5). Returned per element, so the caller chooses the normaliser (the trainer divides by
   the total count of (member, step) terms of the update, which makes gradient accumulation exact).
4. KL: both per-step policies are Gaussians with the same covariance s²I (s = std_dev_t·√|dt|), so the exact KL
   is ||mu - mu_ref||² / (2 s²). Flow-GRPO divides by 2·std_dev_t² instead (= the exact KL times |dt|;
   its FLUX.1-Kontext training script, docs/references.md §3). `form="flow-grpo"` (`rl.kl_form`'s default) takes
   Flow-GRPO's form so its beta values carry over; `form="exact"` the exact per-element KL. The paper's text puts
   the KL against the original model and its Fig. 2 against pi_old; we use the original model (LoRA disabled), as
   Flow-GRPO does.
5. Diagnostics (Flow-GRPO's): approx_kl = ½·mean((lp_new - lp_old)²) and the fraction of clipped ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "GroupAdvantages",
    "approx_kl",
    "clip_fraction",
    "clipped_surrogate",
    "group_advantages",
    "kl_penalty",
]


@dataclass
class GroupAdvantages:
    """Output of `group_advantages`.

    Fields:
        advantages: (N,) fp32 normalised advantages (0 for members of zero-variance groups).
        zero_std_mask: (N,) bool, True for members of groups whose rewards all agree (nothing to learn from).
        num_zero_std_groups: how many groups were dropped that way.
        num_groups: how many distinct groups the batch holds.
    """

    advantages: Tensor
    zero_std_mask: Tensor
    num_zero_std_groups: int
    num_groups: int

    @property
    def zero_std_fraction(self) -> float:
        return self.num_zero_std_groups / max(self.num_groups, 1)


def group_advantages(rewards: Tensor, group_ids: Tensor, *, std: Literal["group", "batch"] = "group",
                     eps: float = 1e-4, zero_std_tol: float = 1e-12) -> GroupAdvantages:
    """Normalise rewards within groups (the paper's per-group z-score; Flow-GRPO's `global_std` option).

    Args:
        rewards: (N,) one scalar reward per rollout.
        group_ids: (N,) integer group of each rollout (one group = one condition).
        std: "group" divides by each group's std (paper), "batch" by the std of all N rewards (Flow-GRPO default).
        eps: added to the std.
        zero_std_tol: a group whose std is at most this is a zero-variance group.

    Returns:
        GroupAdvantages(advantages (N,), zero_std_mask (N,), counts).
    """
    if rewards.ndim != 1 or group_ids.shape != rewards.shape:
        raise ValueError(f"rewards and group_ids must both be (N,); got {tuple(rewards.shape)} and "
                         f"{tuple(group_ids.shape)}")
    if std not in ("group", "batch"):
        raise ValueError(f"std must be 'group' or 'batch', got {std!r}")
    if not torch.isfinite(rewards).all():
        raise ValueError(f"rewards contain NaN or inf: {rewards.tolist()}")
    rewards = rewards.double()
    advantages = torch.zeros_like(rewards)
    zero_mask = torch.zeros(rewards.shape, dtype=torch.bool, device=rewards.device)
    batch_std = rewards.std(unbiased=False) if rewards.numel() > 1 else rewards.new_zeros(())
    groups = torch.unique(group_ids)
    num_zero = 0
    for group in groups:
        members = group_ids == group
        values = rewards[members]
        group_std = values.std(unbiased=False) if values.numel() > 1 else values.new_zeros(())
        if group_std <= zero_std_tol:
            zero_mask[members] = True
            num_zero += 1
            continue
        scale = group_std if std == "group" else batch_std
        advantages[members] = (values - values.mean()) / (scale + eps)
    return GroupAdvantages(advantages.float(), zero_mask, num_zero, int(groups.numel()))


def clipped_surrogate(log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor, clip_range: float,
                      adv_clip: float) -> Tensor:
    """PPO-clip loss per element (the paper's J_clip with a minus sign, as Flow-GRPO computes it).

    loss = max(-A·rho, -A·clip(rho, 1-eps, 1+eps)), rho = exp(log_prob - old_log_prob), A = clamp(adv, ±adv_clip).

    Args:
        log_prob: (...) new per-step log-probs (per-element means), with gradients.
        old_log_prob: (...) sampling-time log-probs, same shape.
        advantages: broadcastable to log_prob.
    Returns:
        (...) fp32 loss terms (minimise them); the caller sums and normalises.
    """
    if log_prob.shape != old_log_prob.shape:
        raise ValueError(f"log_prob {tuple(log_prob.shape)} and old_log_prob {tuple(old_log_prob.shape)} differ")
    adv = advantages.float().clamp(-adv_clip, adv_clip)
    ratio = torch.exp(log_prob.float() - old_log_prob.float().detach())
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    return torch.maximum(unclipped, clipped)


KLForm = Literal["flow-grpo", "exact"]


def kl_penalty(mean: Tensor, ref_mean: Tensor, std: Tensor, std_dev_t: Tensor | None = None,
               form: KLForm = "exact") -> Tensor:
    """The per-step KL to the reference policy, averaged over non-batch dims.

    mean, ref_mean: (B, L, C) step means under the policy and under the reference (LoRA disabled);
    std: (B, 1, 1) the shared per-step scale s = std_dev_t·√|dt|; std_dev_t: (B, 1, 1), needed by `flow-grpo`.
    Returns (B,) fp32:
    - `exact`: KL(N(mean, s²I) || N(ref_mean, s²I)) = mean_elems (mean - ref_mean)² / (2 s²);
    - `flow-grpo`: mean_elems (mean - ref_mean)² / (2 std_dev_t²) (Flow-GRPO's value = the exact one times |dt|).
    """
    if mean.shape != ref_mean.shape:
        raise ValueError(f"mean {tuple(mean.shape)} and ref_mean {tuple(ref_mean.shape)} differ")
    if form == "exact":
        scale = std
    elif form == "flow-grpo":
        if std_dev_t is None:
            raise ValueError("form='flow-grpo' needs std_dev_t")
        scale = std_dev_t
    else:
        raise ValueError(f"form must be 'flow-grpo' or 'exact', got {form!r}")
    diff = mean.float() - ref_mean.float().detach()
    per_element = diff**2 / (2.0 * scale.float() ** 2)
    return per_element.mean(dim=tuple(range(1, per_element.ndim)))


def approx_kl(log_prob: Tensor, old_log_prob: Tensor) -> Tensor:
    """½·mean((lp_new - lp_old)²), a 0-d diagnostic of how far the policy moved (Flow-GRPO's)."""
    return 0.5 * ((log_prob.detach().float() - old_log_prob.float()) ** 2).mean()


def clip_fraction(log_prob: Tensor, old_log_prob: Tensor, clip_range: float) -> Tensor:
    """0-d fraction of ratios outside [1 - clip_range, 1 + clip_range]."""
    ratio = torch.exp(log_prob.detach().float() - old_log_prob.float())
    return ((ratio - 1.0).abs() > clip_range).float().mean()

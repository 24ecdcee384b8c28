"""Flow-GRPO's ODE-to-SDE step, its Gaussian log-probability, and MixGRPO step windows (pure functions).

Conventions (diffusers / FLUX): x_σ = (1 - σ)·x0 + σ·ε, σ runs from 1 (noise) to 0 (data), the
transformer predicts v ≈ ε - x0, and step i goes from σ = sigmas[i] to σ' = sigmas[i + 1] with dt = σ' - σ < 0.
Latents are packed FLUX tokens (B, L, C). Nothing here reads scheduler state: the caller passes σ and σ'
explicitly (the `Rollout` stores them), so a training step can be replayed from the record alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

_LOG_SQRT_2PI = math.log(math.sqrt(2.0 * math.pi))


class SDEStep(NamedTuple):
    """Output of `sde_step` (a named tuple, so `prev, log_prob, mean, std = sde_step(...)` works)."""

    prev_sample: Tensor  # (B, L, C) fp32, x at σ'
    log_prob: Tensor  # (B,) fp32, Gaussian log-density of prev_sample, mean over elements; zeros for an ODE step
    mean: Tensor  # (B, L, C) fp32, μ of the step's Gaussian
    std: Tensor  # (B, 1, 1) fp32, the per-step scale s = std_dev_t·√(σ - σ'); zeros for an ODE step


def _as_column(value: float | Tensor, batch: int, device: torch.device) -> Tensor:
    """A float or (B,) / 0-d tensor as a (B, 1, 1) fp32 tensor that broadcasts over (B, L, C)."""
    column = torch.as_tensor(value, dtype=torch.float32, device=device).reshape(-1, 1, 1)
    if column.shape[0] not in (1, batch):
        raise ValueError(f"sigma has {column.shape[0]} entries; expected 1 or the batch size {batch}")
    return column.expand(batch, 1, 1)


def sde_std_dev(sigma: Tensor, sigma_next: Tensor, noise_level: float) -> Tensor:
    """Flow-GRPO's noise scale std_dev_t = a·√(σ / (1 - σ*)) (the paper's σ_t = a·√(t/(1-t))).

    σ* = σ except at σ = 1 (the first step), where σ* = σ' (= sigmas[1]) avoids the division by zero, as in
    Flow-GRPO `sd3_sde_with_logprob.py:50`. Shapes broadcast; fp32.
    """
    sigma_star = torch.where(sigma >= 1.0, sigma_next, sigma)
    return noise_level * torch.sqrt(sigma / (1.0 - sigma_star))


def gaussian_log_prob(sample: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Mean over all non-batch elements of log N(sample; mean, std²) (as Flow-GRPO's `sde_step_with_logprob`).

    sample, mean: (B, ...); std broadcastable to them; returns (B,) fp32. The mean (not the sum) keeps
    ratios exp(lp_new - lp_old) near 1, which is why Flow-GRPO clip ranges are 1e-4..1e-6.
    """
    sample, mean, std = sample.float(), mean.float(), std.float()
    elementwise = -((sample.detach() - mean) ** 2) / (2.0 * std**2) - torch.log(std) - _LOG_SQRT_2PI
    return elementwise.mean(dim=tuple(range(1, elementwise.ndim)))


def _noise(shape: tuple[int, ...], generator: torch.Generator | list[torch.Generator] | None,
           device: torch.device) -> Tensor:
    """Standard normal noise (B, L, C) fp32; a list of generators draws member b from generator[b]."""
    if isinstance(generator, list) and len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
    return randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)


def sde_step(
    x: Tensor,
    v: Tensor,
    sigma: float | Tensor,
    sigma_next: float | Tensor,
    noise_level: float,
    prev_sample: Tensor | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
) -> SDEStep:
    """One Flow-GRPO "sde" step from σ to σ' with its log-probability (arXiv 2505.05470; the paper's SDE exploration).

    Euler–Maruyama discretisation of dx = [v + σ_t²/(2σ)·(x + (1-σ)·v)]dt + σ_t dw with dt = σ' - σ:
        μ  = x·(1 + std_dev_t²·dt/(2σ)) + v·(1 + std_dev_t²·(1-σ)/(2σ))·dt
        x' = μ + s·ε,  s = std_dev_t·√(σ - σ'),  ε ~ N(0, I)
    and log_prob = mean over elements of log N(x'; μ, s²). All math is fp32 whatever the model dtype.

    Args:
        x: (B, L, C) packed latents at σ.
        v: (B, L, C) predicted velocity (target tokens only).
        sigma, sigma_next: floats or (B,) / 0-d tensors, σ > σ' >= 0.
        noise_level: a >= 0. `0` is the deterministic Euler (ODE) step x' = x + dt·v, computed exactly as
            diffusers' `FlowMatchEulerDiscreteScheduler.step`; its log_prob is undefined and returned as zeros.
        prev_sample: (B, L, C) a given x' (training: the rollout's recorded sample) instead of drawing one.
        generator: one generator, or a list with one per batch member (member b draws from generator[b]).

    Returns:
        SDEStep(prev_sample (B, L, C), log_prob (B,), mean (B, L, C), std (B, 1, 1)), all fp32.
    """
    if x.shape != v.shape or x.ndim != 3:
        raise ValueError(f"x and v must both be (B, L, C); got {tuple(x.shape)} and {tuple(v.shape)}")
    if noise_level < 0:
        raise ValueError(f"noise_level must be >= 0, got {noise_level}")
    batch = x.shape[0]
    sigma_t = _as_column(sigma, batch, x.device)
    sigma_n = _as_column(sigma_next, batch, x.device)
    x32, v32 = x.float(), v.float()
    dt = sigma_n - sigma_t
    if noise_level == 0:
        mean = x32 + dt * v32
        out = mean if prev_sample is None else prev_sample.float()
        zeros = torch.zeros(batch, dtype=torch.float32, device=x.device)
        return SDEStep(out, zeros, mean, torch.zeros_like(sigma_t))
    std_dev_t = sde_std_dev(sigma_t, sigma_n, noise_level)
    mean = (x32 * (1 + std_dev_t**2 / (2 * sigma_t) * dt)
            + v32 * (1 + std_dev_t**2 * (1 - sigma_t) / (2 * sigma_t)) * dt)
    std = std_dev_t * torch.sqrt(-dt)
    if prev_sample is None:
        prev_sample = mean + std * _noise(tuple(x.shape), generator, x.device)
    prev_sample = prev_sample.float().detach()
    return SDEStep(prev_sample, gaussian_log_prob(prev_sample, mean, std), mean, std)


def window_steps(num_steps: int, window_size: int, start: int) -> list[int]:
    """The MixGRPO / Flow-GRPO-Fast window: `window_size` consecutive step indices from `start`.

    The window must end before the last step: the final σ -> 0 step is never trained (its SDE std is 0).
    """
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2 to hold a trainable window, got {num_steps}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    last_start = num_steps - 1 - window_size
    if not 0 <= start <= last_start:
        raise ValueError(
            f"window start={start}, window_size={window_size} does not fit num_steps={num_steps}: the window must lie "
            f"in steps 0..{num_steps - 2} (the final sigma->0 step is never trained), so start must be in "
            f"0..{last_start}"
        )
    return list(range(start, start + window_size))


@dataclass(frozen=True)
class WindowSchedule:
    """Where the SDE window starts at each training iteration (settings only; the iteration is passed in).

    - `progressive` (MixGRPO's sliding window, https://github.com/Tencent-Hunyuan/MixGRPO): the start begins at
      `min_start`, moves by `stride` steps every `iters_per_shift` iterations, and stops at `last_start` (MixGRPO
      without `roll_back`); with `roll_back=True` it returns to `min_start` instead of stopping (MixGRPO's
      `roll_back`).
    - `random` (Flow-GRPO-Fast): the start is drawn uniformly from `min_start..last_start`, from a generator seeded
      with (seed, iteration), so any iteration can be replayed.
    `max_start=None` means the last legal start, num_steps - 1 - window_size (the window then reaches the step just
    before the final sigma->0 step). The paper names MixGRPO but not its movement; both published options are
    offered.
    """

    num_steps: int
    window_size: int
    strategy: Literal["progressive", "random"] = "progressive"
    min_start: int = 0
    max_start: int | None = None
    iters_per_shift: int = 1
    seed: int = 0
    stride: int = 1
    roll_back: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in ("progressive", "random"):
            raise ValueError(f"strategy must be 'progressive' or 'random', got {self.strategy!r}")
        if self.iters_per_shift < 1:
            raise ValueError(f"iters_per_shift must be >= 1, got {self.iters_per_shift}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        window_steps(self.num_steps, self.window_size, self.min_start)
        window_steps(self.num_steps, self.window_size, self.last_start)
        if self.last_start < self.min_start:
            raise ValueError(f"max_start={self.max_start} is below min_start={self.min_start}")

    @property
    def last_start(self) -> int:
        return last_window_start(self.num_steps, self.window_size) if self.max_start is None else self.max_start

    def start(self, iteration: int) -> int:
        """Window start for a training iteration (>= 0)."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if self.strategy == "progressive":
            shifts = iteration // self.iters_per_shift
            if self.roll_back:
                positions = (self.last_start - self.min_start) // self.stride + 1
                return self.min_start + (shifts % positions) * self.stride
            return min(self.min_start + shifts * self.stride, self.last_start)
        span = self.last_start - self.min_start + 1
        generator = torch.Generator("cpu").manual_seed(self.seed * 1_000_003 + iteration)
        return self.min_start + int(torch.randint(span, (1,), generator=generator).item())

    def steps(self, iteration: int) -> list[int]:
        """The window's step indices at `iteration`."""
        return window_steps(self.num_steps, self.window_size, self.start(iteration))


def last_window_start(num_steps: int, window_size: int) -> int:
    """The last legal window start, num_steps - 1 - window_size: the window never holds the final sigma->0 step."""
    return num_steps - 1 - window_size

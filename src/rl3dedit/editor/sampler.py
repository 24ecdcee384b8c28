"""The Kontext denoising loop with per-step SDE/ODE control, built on `FluxKontextPipeline`'s own methods.

Reused from the pipeline unchanged: `encode_prompt`, `image_processor` resize/preprocess,
`prepare_latents` (VAE encode, packing, position ids), `_pack_latents`/`_unpack_latents`, the module-level
`calculate_shift`/`retrieve_timesteps`, VAE decode and `postprocess`. Re-implemented: the loop, with `sde_step` in
place of `scheduler.step`. With every noise level 0 the loop equals `FluxKontextPipeline.__call__` bit for bit in
float32 (the state is carried in fp32; in bf16 the stock pipeline rounds the latents to bf16 after every step and
this loop does not, so results differ by that rounding).

`velocity` is the single denoiser-call code path used both by sampling and by log-prob recomputation.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import FluxKontextPipeline
from diffusers.pipelines.flux.pipeline_flux_kontext import calculate_shift, retrieve_timesteps
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from torch import Tensor

from rl3dedit.editor.rollout import Condition
from rl3dedit.editor.sde import sde_step

logger = logging.getLogger(__name__)


@dataclass
class Schedule:
    """The sigma schedule of one sampling run (as `FluxKontextPipeline.__call__` builds it)."""

    sigmas: Tensor  # (T+1,) fp32, from 1 down to 0
    timesteps: Tensor  # (T,) fp32, sigmas[:T]·1000


@dataclass
class Trajectory:
    """Output of `denoise` for one chunk of members."""

    final: Tensor  # (B, L, C) fp32
    recorded: Tensor  # (B, K+1, L, C) fp32, or (B, 0, L, C) when K = 0
    log_probs: Tensor  # (B, K) fp32


def output_size(pipe: FluxKontextPipeline, height: int, width: int) -> tuple[int, int]:
    """(height, width) the pipeline produces for `max_area = height·width`."""
    multiple_of = pipe.vae_scale_factor * 2
    aspect_ratio = width / height
    max_area = height * width
    out_w = round((max_area * aspect_ratio) ** 0.5) // multiple_of * multiple_of
    out_h = round((max_area / aspect_ratio) ** 0.5) // multiple_of * multiple_of
    if (out_h, out_w) != (height, width):
        logger.warning("output size %dx%d adjusted to %dx%d (multiples of %d px)", width, height, out_w, out_h,
                       multiple_of)
    return out_h, out_w


def _as_pipeline_image(image: Image.Image | Tensor) -> Image.Image | Tensor:
    """A PIL image as is, or a (3, H, W) tensor in [0, 1] as the (1, 3, H, W) batch the pipeline expects."""
    if isinstance(image, Image.Image):
        return image
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"image must be a PIL image or a (3, H, W) tensor in [0, 1]; got {shape}")
    return image.unsqueeze(0)


def preprocess_image(pipe: FluxKontextPipeline, image: Image.Image | Tensor) -> Tensor:
    """The conditioning image as (1, 3, h, w) in [-1, 1], sized as `__call__` does with `_auto_resize=False`."""
    image = _as_pipeline_image(image)
    multiple_of = pipe.vae_scale_factor * 2
    image_height, image_width = pipe.image_processor.get_default_height_width(image)
    image_width = image_width // multiple_of * multiple_of
    image_height = image_height // multiple_of * multiple_of
    image = pipe.image_processor.resize(image, image_height, image_width)
    return pipe.image_processor.preprocess(image, image_height, image_width)


def latent_shape(pipe: FluxKontextPipeline, height: int, width: int) -> tuple[int, int, int]:
    """(channels, h, w) of the unpacked noise latents for an output of height x width pixels."""
    channels = pipe.transformer.config.in_channels // 4
    return channels, 2 * (height // (pipe.vae_scale_factor * 2)), 2 * (width // (pipe.vae_scale_factor * 2))


def initial_noise(pipe: FluxKontextPipeline, generator: torch.Generator, height: int, width: int,
                  dtype: torch.dtype, device: torch.device) -> Tensor:
    """(1, L, C) packed initial noise drawn exactly as `prepare_latents` draws it for one generator."""
    channels, h, w = latent_shape(pipe, height, width)
    noise = randn_tensor((1, channels, h, w), generator=generator, device=device, dtype=dtype)
    return pipe._pack_latents(noise, 1, channels, h, w)


@torch.no_grad()
def encode_condition(pipe: FluxKontextPipeline, image: Image.Image | Tensor, prompt: str, *, height: int, width: int,
                     guidance_scale: float, max_sequence_length: int, first_noise: Tensor) -> Condition:
    """Prompt embeddings, conditioning latents and position ids, through the pipeline's own methods.

    `first_noise` (1, L, C) is handed to `prepare_latents` as `latents` so that it draws nothing itself.
    """
    device = pipe._execution_device
    prompt_embeds, pooled, text_ids = pipe.encode_prompt(
        prompt=prompt, prompt_2=None, device=device, num_images_per_prompt=1, max_sequence_length=max_sequence_length
    )
    pixels = preprocess_image(pipe, image)
    channels = pipe.transformer.config.in_channels // 4
    _, image_latents, latent_ids, image_ids = pipe.prepare_latents(
        pixels, 1, channels, height, width, prompt_embeds.dtype, device, None, first_noise
    )
    return Condition(prompt_embeds, pooled, text_ids, image_latents, image_ids, latent_ids, float(guidance_scale),
                     height, width)


def flow_schedule(pipe: FluxKontextPipeline, num_steps: int, image_seq_len: int) -> Schedule:
    """Sigmas and timesteps exactly as `__call__` computes them, on a copy of the scheduler (its state untouched).

    sigmas = linspace(1, 1/T, T), time-shifted with mu = calculate_shift(L target tokens), then a trailing 0.
    """
    scheduler = copy.deepcopy(pipe.scheduler)
    config = scheduler.config
    mu = calculate_shift(
        image_seq_len, config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5), config.get("max_shift", 1.15),
    )
    sigmas = np.linspace(1.0, 1 / num_steps, num_steps)
    timesteps, _ = retrieve_timesteps(scheduler, num_steps, pipe._execution_device, sigmas=sigmas, mu=mu)
    return Schedule(scheduler.sigmas.clone().float(), timesteps.clone().float())


def velocity(transformer: torch.nn.Module, x: Tensor, timestep: Tensor, cond_embeds: Tensor, cond_pooled: Tensor,
             text_ids: Tensor, image_latents: Tensor, latent_ids: Tensor, image_ids: Tensor,
             guidance_scale: float) -> Tensor:
    """The predicted velocity v (B, L, C) of the target tokens, in the model dtype.

    x: (B, L, C) noisy latents (any float dtype; cast to the embeddings' dtype as the pipeline's latents are);
    timestep: 0-d fp32 tensor, sigma·1000 as in `scheduler.timesteps`; condition tensors with 1 or B rows.
    hidden_states = cat(x, image_latents) along tokens; ids = cat(latent_ids, image_ids); the output is sliced back
    to the L target tokens.
    """
    batch, num_tokens = x.shape[0], x.shape[1]
    dtype = cond_embeds.dtype

    def rows(t: Tensor) -> Tensor:
        return t if t.shape[0] == batch else t.expand(batch, *t.shape[1:])

    hidden = torch.cat([x.to(dtype), rows(image_latents)], dim=1)
    guidance_in = None
    if transformer.config.guidance_embeds:
        guidance_in = torch.full([1], guidance_scale, device=x.device, dtype=torch.float32).expand(batch)
    out = transformer(
        hidden_states=hidden,
        timestep=timestep.expand(batch).to(dtype) / 1000,
        guidance=guidance_in,
        pooled_projections=rows(cond_pooled),
        encoder_hidden_states=rows(cond_embeds),
        txt_ids=text_ids,
        img_ids=torch.cat([latent_ids, image_ids], dim=0),
        joint_attention_kwargs={},
        return_dict=False,
    )[0]
    return out[:, :num_tokens]


def condition_velocity(transformer: torch.nn.Module, x: Tensor, timestep: Tensor, cond: Condition) -> Tensor:
    """`velocity` with the inputs taken from a `Condition`."""
    return velocity(transformer, x, timestep, cond.prompt_embeds, cond.pooled_prompt_embeds, cond.text_ids,
                    cond.image_latents, cond.latent_ids, cond.image_ids, cond.guidance_scale)


@torch.no_grad()
def denoise(transformer: torch.nn.Module, cond: Condition, noise: Tensor, schedule: Schedule, noise_levels: list[float],
            record: list[int], generators: list[torch.Generator]) -> Trajectory:
    """Run all T steps from `noise` (B, L, C); step i uses noise level noise_levels[i] (0 = Euler ODE step).

    Steps listed in `record` (consecutive) store their input/output latents and log-probs. Member b draws its SDE
    noise from generators[b].
    """
    num_steps = len(schedule.timesteps)
    if len(noise_levels) != num_steps:
        raise ValueError(f"got {len(noise_levels)} noise levels for {num_steps} steps")
    x = noise.float()
    recorded: list[Tensor] = []
    log_probs: list[Tensor] = []
    for i in range(num_steps):
        v = condition_velocity(transformer, x, schedule.timesteps[i], cond)
        step = sde_step(x, v, schedule.sigmas[i], schedule.sigmas[i + 1], noise_levels[i], generator=generators)
        if i in record:
            if not recorded:
                recorded.append(x)
            recorded.append(step.prev_sample)
            log_probs.append(step.log_prob)
        x = step.prev_sample
    batch = x.shape[0]
    stacked = torch.stack(recorded, dim=1) if recorded else x.new_zeros(batch, 0, *x.shape[1:])
    lps = torch.stack(log_probs, dim=1) if log_probs else x.new_zeros(batch, 0)
    return Trajectory(x, stacked, lps)


@torch.no_grad()
def decode(pipe: FluxKontextPipeline, latents: Tensor, height: int, width: int) -> Tensor:
    """Packed latents (B, L, C) -> images (B, 3, H, W) in [0, 1], as the end of `__call__` (output_type="pt")."""
    vae = pipe.vae
    unpacked = pipe._unpack_latents(latents.to(vae.dtype), height, width, pipe.vae_scale_factor)
    unpacked = unpacked / vae.config.scaling_factor + vae.config.shift_factor
    image = vae.decode(unpacked, return_dict=False)[0]
    images = pipe.image_processor.postprocess(image, output_type="pt")
    pipe.maybe_free_model_hooks()
    return images.float()

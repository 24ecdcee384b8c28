"""`KontextGridEditor`: FLUX.1-Kontext editing of a grid of views, with SDE rollouts and log-probs for GRPO.

views (V, 3, H, W) -> `rl3dedit.views.tile` (configured layout) -> one grid image -> Kontext edit -> `split` -> views.
The grid is edited at its own size (`_auto_resize=False`, output height x width = grid size, `max_area` = its
area), which is what the released weights expect once `views.tile(layout="release")` has snapped the grid to a
Kontext bucket (the released inference code, https://github.com/AMAP-ML/RL3DEdit).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers import FluxKontextPipeline
from PIL import Image
from torch import Tensor

from rl3dedit.editor import lora as _lora
from rl3dedit.editor.prompts import grid_prompt
from rl3dedit.editor.rollout import EditResult, Rollout, StepLogProb
from rl3dedit.editor.sampler import (
    condition_velocity,
    decode,
    denoise,
    encode_condition,
    flow_schedule,
    initial_noise,
    output_size,
)
from rl3dedit.editor.sde import sde_step, window_steps

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig
    from rl3dedit.editor.config import EditorConfig

logger = logging.getLogger(__name__)


def _image_size(image: Image.Image | Tensor) -> tuple[int, int]:
    """(height, width) of a PIL image or a (3, H, W) tensor."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    return int(image.shape[-2]), int(image.shape[-1])


def _generator(seed: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(int(seed))


class KontextGridEditor:
    """A FLUX.1-Kontext policy over grid images. Holds the pipeline and grid settings; every call takes its seeds.

    Args:
        pipe: a `FluxKontextPipeline` (`load_pipeline` / `build_tiny_pipeline`).
        rows, cols: grid shape; `edit_views` needs rows·cols views.
        layout: `aligned` or `release`, passed to `rl3dedit.views.tile/split`.
        max_sequence_length: T5 prompt tokens (<= 512).
    """

    def __init__(self, pipe: FluxKontextPipeline, *, rows: int = 3, cols: int = 3, layout: str = "aligned",
                 max_sequence_length: int = 512) -> None:
        if rows < 1 or cols < 1:
            raise ValueError(f"rows and cols must be >= 1, got {rows}x{cols}")
        if not 1 <= max_sequence_length <= 512:
            raise ValueError(f"max_sequence_length must be in 1..512, got {max_sequence_length}")
        self.pipe = pipe
        self.rows, self.cols, self.layout = rows, cols, layout
        self.max_sequence_length = max_sequence_length

    @classmethod
    def from_config(cls, config: RunConfig, device: torch.device | str, *,
                    editor: EditorConfig | None = None) -> KontextGridEditor:
        """The grid editor of a run: the pipeline of `editor` (default `config.editor`; `load_pipeline`) on
        `device`, with the grid shape and layout of `config.views` and `config.editor.max_sequence_length`."""
        from rl3dedit.editor.components import load_pipeline

        editor = editor if editor is not None else config.editor
        return cls(load_pipeline(editor, device), rows=config.views.rows, cols=config.views.cols,
                   layout=config.views.layout, max_sequence_length=editor.max_sequence_length)

    @property
    def transformer(self) -> torch.nn.Module:
        return self.pipe.transformer

    # ------------------------------------------------------------------------------------------------- sampling
    def sample(self, image: Image.Image | Tensor, prompt: str, *, num_steps: int, guidance_scale: float, seed: int,
               noise_level: float = 0.0, window: tuple[int, int] | None = None, height: int | None = None,
               width: int | None = None) -> Rollout:
        """One edit of `image` (PIL or (3, H, W) in [0, 1]); see `rollout` for `noise_level` and `window`.

        With noise_level=0 this equals `pipe(image=image, prompt=prompt, num_inference_steps=num_steps,
        guidance_scale=guidance_scale, generator=torch.Generator("cpu").manual_seed(seed), height=height, width=width,
        max_area=height*width, _auto_resize=False)` bit for bit in float32. height/width default to the image size.
        """
        return self.rollout(image, prompt, group_size=1, num_steps=num_steps, guidance_scale=guidance_scale,
                            seeds=[seed], noise_level=noise_level, window=window, height=height, width=width)

    @torch.no_grad()
    def rollout(self, image: Image.Image | Tensor, prompt: str, *, group_size: int, num_steps: int,
                guidance_scale: float, seeds: list[int], noise_level: float, window: tuple[int, int] | None,
                height: int | None = None,
                width: int | None = None, batch_size: int | None = None) -> Rollout:
        """G = group_size edits of one condition, for GRPO (Flow-GRPO's rollout with a MixGRPO window).

        Prompt embeddings and conditioning latents are computed once and shared; member i uses its own
        `torch.Generator("cpu").manual_seed(seeds[i])` for its initial noise (drawn as the stock pipeline draws it)
        and its SDE noise. `window=(start, window_size)`: SDE with `noise_level` on those consecutive steps, ODE
        elsewhere; `window=None` with noise_level > 0 means SDE on every step but the last (start 0, size
        num_steps - 1). Only window steps are recorded; the final sigma -> 0 step never is. `batch_size` members go
        through the transformer together (default: all G); the record keeps it so `log_prob` can reuse the chunks.
        """
        if group_size < 1 or len(seeds) != group_size:
            raise ValueError(f"need group_size >= 1 and one seed per member; got group_size={group_size}, "
                             f"{len(seeds)} seeds")
        if noise_level < 0:
            raise ValueError(f"noise_level must be >= 0, got {noise_level}")
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        record = self._recorded_steps(num_steps, noise_level, window)
        levels = [noise_level if i in record else 0.0 for i in range(num_steps)]
        batch_size = group_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

        image_h, image_w = _image_size(image)
        height, width = output_size(self.pipe, height or image_h, width or image_w)
        device = self.pipe._execution_device
        dtype = self.pipe.text_encoder_2.dtype if self.pipe.text_encoder_2 is not None else self.transformer.dtype
        generators = [_generator(s) for s in seeds]
        noises = [initial_noise(self.pipe, g, height, width, dtype, device) for g in generators]
        cond = encode_condition(self.pipe, image, prompt, height=height, width=width, guidance_scale=guidance_scale,
                                max_sequence_length=self.max_sequence_length, first_noise=noises[0])
        schedule = flow_schedule(self.pipe, num_steps, noises[0].shape[1])

        chunks = []
        for start in range(0, group_size, batch_size):
            members = slice(start, start + batch_size)
            chunks.append(denoise(self.transformer, cond, torch.cat(noises[members]), schedule, levels, record,
                                  generators[members]))
        final = torch.cat([c.final for c in chunks])
        images = torch.cat([decode(self.pipe, c.final, height, width) for c in chunks])
        index = torch.as_tensor(record, dtype=torch.long, device=schedule.sigmas.device)
        return Rollout(
            images=images,
            latents=torch.cat([c.recorded for c in chunks]),
            final_latents=final,
            log_probs=torch.cat([c.log_probs for c in chunks]),
            sigmas=torch.stack([schedule.sigmas[index], schedule.sigmas[index + 1]], dim=1),
            timesteps=schedule.timesteps[index],
            step_indices=record,
            condition=cond,
            noise_level=float(noise_level),
            seeds=[int(s) for s in seeds],
            num_steps=num_steps,
            batch_size=batch_size,
            prompt=prompt,
        )

    @staticmethod
    def _recorded_steps(num_steps: int, noise_level: float, window: tuple[int, int] | None) -> list[int]:
        if noise_level == 0:
            if window is not None:
                raise ValueError(f"window={window} needs noise_level > 0 (an ODE run records no steps)")
            return []
        if window is None:
            return window_steps(num_steps, num_steps - 1, 0)
        if len(window) != 2:
            raise ValueError(f"window must be (start, window_size), got {window}")
        start, size = window
        return window_steps(num_steps, size, start)

    # ------------------------------------------------------------------------------------------------ training
    def log_prob(self, rollout: Rollout, k: int, *, members: list[int] | None = None,
                 use_reference: bool = False) -> StepLogProb:
        """Recompute recorded step k (0 <= k < K) for `members` with gradients through the transformer.

        The same `velocity` and `sde_step` as the rollout, with prev_sample = the recorded x_{k+1}
        (as Flow-GRPO recomputes it). On unchanged weights exp(new - old) is exactly 1 when `members` is one of
        `rollout.member_chunks()` (the default `None` = all members equals the rollout when it ran in one chunk);
        other groupings change the transformer's batch and may differ in the last bits (`docs/editor.md`).
        `use_reference=True` runs the base model with LoRA adapters disabled and no gradient (the KL reference).
        """
        if rollout.noise_level == 0 or rollout.num_recorded == 0:
            raise ValueError("this rollout recorded no SDE steps (noise_level 0): there is no log-prob to recompute")
        if not 0 <= k < rollout.num_recorded:
            raise ValueError(f"k={k} is not a recorded step index; the rollout recorded K={rollout.num_recorded}")
        sub = rollout if members is None else rollout.select(members)
        transformer = self.transformer
        device = sub.latents.device
        x, prev = sub.latents[:, k], sub.latents[:, k + 1]
        sigma, sigma_next = sub.sigmas[k, 0], sub.sigmas[k, 1]

        def run() -> StepLogProb:
            v = condition_velocity(transformer, x, sub.timesteps[k], sub.condition)
            step = sde_step(x, v, sigma, sigma_next, sub.noise_level, prev_sample=prev)
            column = torch.ones(x.shape[0], 1, 1, device=device)
            return StepLogProb(step.log_prob, step.mean, step.std, column * sigma, column * sigma_next)

        if use_reference:
            with torch.no_grad(), _lora.adapters_disabled(transformer):
                return run()
        return run()

    # ----------------------------------------------------------------------------------------------- editing
    def edit_views(self, views: Tensor, instruction: str, *, num_steps: int, guidance_scale: float, seed: int,
                   rewrite: bool = True) -> EditResult:
        """Tile V = rows·cols views (V, 3, H, W) in [0, 1], edit the grid with an ODE run, split it back.

        `rewrite=True` wraps the instruction in the grid template (`prompts.grid_prompt`; an instruction that already
        names the rows x cols grid, such as an `enhance_instruction` rewrite, passes through unchanged); False sends
        the instruction as is.
        """
        return self.edit_views_seeds(views, instruction, num_steps=num_steps, guidance_scale=guidance_scale,
                                     seeds=[seed], rewrite=rewrite)[0]

    def edit_views_seeds(self, views: Tensor, instruction: str, *, num_steps: int, guidance_scale: float,
                         seeds: list[int], batch_size: int | None = None, rewrite: bool = True) -> list[EditResult]:
        """`edit_views` once per seed (best-of-N candidates): prompt and conditioning are encoded once and
        `batch_size` seeds go through the transformer together (None = all). Each result is the edit with that
        seed alone, up to the last bits of batched arithmetic."""
        from rl3dedit.views import split, tile

        if views.ndim != 4 or views.shape[1] != 3:
            raise ValueError(f"views must be (V, 3, H, W) in [0, 1], got {tuple(views.shape)}")
        if views.shape[0] != self.rows * self.cols:
            raise ValueError(f"{views.shape[0]} views do not fill a {self.rows}x{self.cols} grid")
        view_size = (int(views.shape[-2]), int(views.shape[-1]))
        source_grid = tile(views.float().cpu(), self.rows, self.cols, self.layout)
        prompt = grid_prompt(instruction, self.rows, self.cols) if rewrite else instruction
        height, width = int(source_grid.shape[-2]), int(source_grid.shape[-1])
        result = self.rollout(source_grid.clamp(0, 1), prompt, group_size=len(seeds), num_steps=num_steps,
                              guidance_scale=guidance_scale, seeds=list(seeds), noise_level=0.0, window=None,
                              height=height, width=width, batch_size=batch_size)
        edits = []
        for grid, seed in zip(result.images.cpu(), seeds):
            if grid.shape != source_grid.shape:
                raise ValueError(f"edited grid {tuple(grid.shape)} differs from the source grid "
                                 f"{tuple(source_grid.shape)}: grid sides must be multiples of "
                                 f"{self.pipe.vae_scale_factor * 2} px")
            edited = split(grid, self.rows, self.cols, self.layout, view_size)
            edits.append(EditResult(views=edited, grid=grid, source_grid=source_grid, prompt=prompt, seed=int(seed)))
        return edits

    # --------------------------------------------------------------------------------------------------- LoRA
    def add_lora(self, rank: int = 32, alpha: float = 32,
                 target_modules: tuple[str, ...] | list[str] = _lora.KONTEXT_LORA_TARGETS, init_seed: int = 0,
                 dtype: torch.dtype | None = torch.float32) -> None:
        """Attach a trainable LoRA (Gaussian init, lora_B = 0, weights in `dtype`) and freeze the base transformer."""
        _lora.add_lora(self.transformer, rank, alpha, target_modules, init_seed, dtype)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The LoRA parameters (empty without an adapter)."""
        return [p for p in _lora.lora_parameters(self.transformer) if p.requires_grad]

    def named_trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters with `requires_grad`, by their transformer name (what checkpoints key on)."""
        return {name: p for name, p in self.transformer.named_parameters() if p.requires_grad}

    def train(self) -> None:
        """Training mode for the policy update (dropout and gradient checkpointing active)."""
        self.transformer.train()

    def eval(self) -> None:
        """Inference mode (rollouts and editing)."""
        self.transformer.eval()

    def save_lora(self, folder: str | Path) -> Path:
        """Write the adapter in diffusers' pipeline LoRA format (`pipe.load_lora_weights(folder)` reads it)."""
        return _lora.save_lora(self.transformer, folder)

    def load_lora(self, folder: str | Path) -> None:
        """Load an adapter folder as the trainable adapter (replacing any current one)."""
        _lora.load_lora(self.transformer, folder)

    def save_merged_transformer(self, path: str | Path) -> Path:
        """One safetensors file of the LoRA-merged transformer (diffusers layout; `transformer_file` loads it)."""
        return _lora.save_merged_transformer(self.transformer, path)

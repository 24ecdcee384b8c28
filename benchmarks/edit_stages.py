"""Per-stage time of one grid edit, and the share of everything outside the transformer calls.

Two set-ups, both through the editor's real code path (`rl3dedit.editor.sampler`: prompt encoding, conditioning
latents, schedule, denoising loop, decode):

1. `tiny`: the tiny preset (9 views of 64 px in a 3x3 grid = 192x192, 144 + 144 tokens, T5 length 32, 4 steps).
2. `paper-shapes`: the paper's 9 views as a 1024x1024 grid and 28 steps with a shape-faithful transformer stand-in:
   the real `FluxTransformer2DModel` class with the real token counts (4096 target + 4096 context + 512 text
   tokens, 64 packed channels, guidance embedding) but 1 double + 1 single block of width 64, so it runs on CPU.
   The tiny VAE has the real scale factor (8) and latent channels (16), so all latent shapes are the real ones.
   Also run with the paper's RL setting (12 steps, SDE window of 4, a = 0.8, group of 2 here).

"Overhead" = wall time of the loop minus the time inside `transformer.forward` (concatenation, casting, the SDE
step, bookkeeping). The stand-in transformer is ~1000x cheaper than FLUX-12B, so the measured overhead fraction is
a strong upper bound on the real one. Encode/decode times are reported separately: with tiny encoders and VAE they
say nothing about the real T5-XXL / FLUX VAE cost (see the H100 estimate printed at the end).

Usage: python benchmarks/edit_stages.py [--repeats 3] [--skip-paper-shapes]
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import torch
from diffusers import FluxTransformer2DModel

from rl3dedit.editor import build_tiny_pipeline
from rl3dedit.editor.sampler import decode, denoise, encode_condition, flow_schedule, initial_noise
from rl3dedit.editor.sde import window_steps


class ForwardTimer:
    """Accumulates wall time spent inside a module's forward."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._module = module
        self._original = module.forward

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self._original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        module.forward = timed

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


@contextmanager
def stage(times: dict[str, float], name: str):
    start = time.perf_counter()
    yield
    times[name] = times.get(name, 0.0) + time.perf_counter() - start


def standin_transformer(seed: int = 0) -> FluxTransformer2DModel:
    """Real FLUX transformer class, real token/channel interface, 2 blocks of width 64 (text width 32 = tiny T5)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=32,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(8, 12, 12),
            guidance_embeds=True,
        ).eval()


def run_once(pipe, timer: ForwardTimer, *, size: int, steps: int, text_len: int, group: int, noise_level: float,
             window: list[int]) -> dict[str, float]:
    times: dict[str, float] = {}
    image = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    generators = [torch.Generator("cpu").manual_seed(s) for s in range(group)]
    device = pipe._execution_device
    with stage(times, "total"):
        with stage(times, "noise"):
            noises = [initial_noise(pipe, g, size, size, torch.float32, device) for g in generators]
        with stage(times, "encode (text + VAE)"):
            cond = encode_condition(pipe, image, "make the statue golden in the 3x3 grid", height=size, width=size,
                                    guidance_scale=2.5, max_sequence_length=text_len, first_noise=noises[0])
        with stage(times, "schedule"):
            schedule = flow_schedule(pipe, steps, noises[0].shape[1])
        levels = [noise_level if i in window else 0.0 for i in range(steps)]
        timer.reset()
        with stage(times, "denoise loop"):
            traj = denoise(pipe.transformer, cond, torch.cat(noises), schedule, levels, window, generators)
        times["  transformer calls"] = timer.seconds
        times["  loop overhead"] = times["denoise loop"] - timer.seconds
        with stage(times, "decode (VAE)"):
            decode(pipe, traj.final, size, size)
    return times


def report(title: str, runs: list[dict[str, float]]) -> dict[str, float]:
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"\n{title}  (median of {len(runs)} runs, seconds)")
    for key, value in median.items():
        print(f"  {key:<24s} {value:9.4f}   {100 * value / median['total']:5.1f} %")
    outside = median["total"] - median["  transformer calls"]
    print(f"  outside transformer calls: {outside:.4f} s = {100 * outside / median['total']:.1f} % of total; "
          f"loop overhead alone = {100 * median['  loop overhead'] / median['denoise loop']:.2f} % of the loop")
    return median


def h100_estimate() -> None:
    """FLOPs per step of FLUX.1-Kontext-dev (12B) at the 3x3 grid's sequence length, and a time estimate."""
    params = 11.9e9
    hidden, blocks = 3072, 19 + 38
    tokens = 4096 + 4096 + 512
    linear = 2 * params * tokens
    attention = blocks * 4 * tokens**2 * hidden
    per_step = linear + attention
    print("\nH100 estimate (written, not measured)")
    print(f"  tokens per step: {tokens} (4096 target + 4096 context + 512 text)")
    print(f"  FLOPs per step: linear {linear:.3g} + attention {attention:.3g} = {per_step:.3g}")
    for mfu in (0.35, 0.5):
        seconds = per_step / (989e12 * mfu)
        print(f"  at {mfu:.0%} of 989 TFLOP/s bf16: {seconds:.2f} s/step, 28 steps {28 * seconds:.1f} s, "
              f"one RL rollout member (12 steps) {12 * seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-paper-shapes", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")

    with torch.no_grad():
        pipe = build_tiny_pipeline(0)
        timer = ForwardTimer(pipe.transformer)
        tiny = dict(size=192, steps=4, text_len=32, group=1, noise_level=0.0, window=[])
        run_once(pipe, timer, **tiny)  # warm-up
        report("tiny preset: 3x3 grid of 64 px views (192x192), 4 ODE steps",
               [run_once(pipe, timer, **tiny) for _ in range(args.repeats)])
        if args.skip_paper_shapes:
            return
        pipe.transformer = standin_transformer()
        timer = ForwardTimer(pipe.transformer)
        paper = dict(size=1024, steps=28, text_len=512, group=1, noise_level=0.0, window=[])
        report("paper shapes, stand-in transformer: 1024x1024 grid, 8704 tokens, 28 ODE steps",
               [run_once(pipe, timer, **paper) for _ in range(max(1, args.repeats - 1))])
        rl = dict(size=1024, steps=12, text_len=512, group=2, noise_level=0.8, window=window_steps(12, 4, 0))
        report("paper shapes, RL rollout: 12 steps, SDE window of 4, a = 0.8, 2 members",
               [run_once(pipe, timer, **rl) for _ in range(1)])
    h100_estimate()


if __name__ == "__main__":
    main()

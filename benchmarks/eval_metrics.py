"""CPU time of each evaluation metric for one case of E novel views, and of a whole tiny `rl3dedit eval` run.

Metrics run on renders of the synthetic scene along an arc (E views of S x S px): CLIP-T + CLIP-dir with the tiny
CLIP and, with --clip-large, a randomly initialised ViT-L/14 of the real architecture (same compute as
openai/clip-vit-large-patch14; nothing is downloaded); Ph-Loss with rendered depth; Ph-Loss and VGGT consistency
with the tiny VGGT. With --cases, also times `run_eval` end to end on a cases file with the tiny preset.

Usage: python benchmarks/eval_metrics.py [--views 9] [--size 64] [--repeats 3] [--clip-large]
       [--cases src/rl3dedit/configs/eval/tiny.yaml]
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch


def _arc(num_views: int, size: int):
    from rl3dedit.render import render
    from rl3dedit.scene import Cameras, intrinsics_from_fov, look_at_viewmats
    from rl3dedit.synthetic import SYNTHETIC_TARGET, make_synthetic_scene

    angles = torch.linspace(0.0, 0.15 * (num_views - 1), num_views)
    elevation = math.radians(30)
    eyes = torch.stack([
        2.7 * torch.cos(angles) * math.cos(elevation), 2.7 * torch.sin(angles) * math.cos(elevation),
        torch.full_like(angles, 2.7 * math.sin(elevation) + SYNTHETIC_TARGET[2]),
    ], dim=1)
    viewmats = look_at_viewmats(eyes, torch.tensor(SYNTHETIC_TARGET), torch.tensor([0.0, 0.0, 1.0]))
    cameras = Cameras(viewmats, intrinsics_from_fov(50.0, size, size).repeat(num_views, 1, 1), size, size)
    out = render(make_synthetic_scene(seed=0), cameras, mode="RGB+ED", background=(1.0, 1.0, 1.0))
    return out.rgb.clamp(0, 1), out.depth, cameras


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _clip_large():
    from transformers import CLIPConfig, CLIPModel

    from rl3dedit.editor import build_tiny_clip_tokenizer
    from rl3dedit.eval import ClipScorer

    tokenizer = build_tiny_clip_tokenizer()
    text = dict(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, projection_dim=768, eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(image_size=224, patch_size=14, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                  num_attention_heads=16, projection_dim=768)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=768))
    return ClipScorer(model, tokenizer, name="random ViT-L/14")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=9)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clip-large", action="store_true")
    parser.add_argument("--cases", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    from rl3dedit.eval import build_tiny_clip, ph_loss_rendered_depth, ph_loss_vggt
    from rl3dedit.geometry.vggt import build_tiny_vggt
    from rl3dedit.rewards import ConsistencyReward

    views, depth, cameras = _arc(args.views, args.size)
    edited = views.flip(1)
    rows = []
    clip = build_tiny_clip()
    rows.append(("CLIP-T + CLIP-dir (tiny CLIP)", _time(lambda: clip.score(
        views, edited, source_caption="a red object", target_caption="a blue object"), args.repeats)))
    if args.clip_large:
        large = _clip_large()
        rows.append(("CLIP-T + CLIP-dir (ViT-L/14 architecture)", _time(lambda: large.score(
            views, edited, source_caption="a red object", target_caption="a blue object"), args.repeats)))
    rows.append(("Ph-Loss, rendered depth", _time(lambda: ph_loss_rendered_depth(
        views, depth, cameras, depth_rel_threshold=0.05), args.repeats)))
    vggt = build_tiny_vggt(0)
    rows.append(("Ph-Loss, tiny VGGT depth (56 px)", _time(lambda: ph_loss_vggt(
        views, cameras, vggt, image_size=56, depth_rel_threshold=0.05), args.repeats)))
    consistency = ConsistencyReward(vggt, image_size=56)
    rows.append(("VGGT consistency, tiny VGGT (56 px)", _time(lambda: consistency.score(
        torch.stack([views, edited]), cameras), args.repeats)))
    if args.cases is not None:
        from rl3dedit.config import load_config
        from rl3dedit.eval import load_cases, run_eval

        cases = load_cases(args.cases)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            run = run_eval(load_config("tiny"), cases, Path(tmp) / "eval", env={})
            total = time.perf_counter() - start
        ok = sum(r.status == "ok" for r in run.results)
        rows.append((f"rl3dedit eval, {args.cases.name}, tiny preset ({ok}/{len(run.results)} cases ok)", total))
    print(f"# eval metrics on CPU, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, E={args.views} views of {args.size}x{args.size}")
    print("| what | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

"""Seconds per GRPO update of the tiny preset, split into rollout / VAE decode / reward / policy update, peak memory,
and rollout throughput with 1 and 2 processes (accelerate, gloo on CPU).

    python benchmarks/train_step.py --updates 3            # phase split + peak RSS (one process)
    python benchmarks/train_step.py --scaling              # members/s with 1 and 2 processes (spawns accelerate)

Numbers depend heavily on other load on the machine; run it on an idle box for clean figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _decode_timer(pipe) -> dict[str, float]:
    """Wrap the VAE decode so its time can be separated from the denoising loop."""
    spent = {"decode": 0.0}
    original = pipe.vae.decode

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        spent["decode"] += time.perf_counter() - start
        return out

    pipe.vae.decode = timed
    return spent


def phase_split(updates: int, view_size: int) -> dict:
    from accelerate import Accelerator

    from rl3dedit.config import load_config
    from rl3dedit.rewards import build_composite_reward
    from rl3dedit.rl import (
        GRPOTrainer,
        PreparedDataset,
        build_editor,
        builtin_manifest_path,
        load_manifest,
        prepare_dataset,
    )

    cfg = load_config("tiny")
    cfg = cfg.model_copy(update={"views": cfg.views.model_copy(update={"view_size": view_size}),
                                 "rl": cfg.rl.model_copy(update={"prepare_num_steps": 1, "checkpoint_every": 10**6})})
    run = Path(tempfile.mkdtemp(prefix="train_step_"))
    editor = build_editor(cfg, "cpu")
    manifest = load_manifest(builtin_manifest_path())
    manifest.scenes[0].view_sets.auto = 1
    prepare_dataset(cfg, manifest, run / "data", editor=editor)
    spent = _decode_timer(editor.pipe)
    reward = build_composite_reward(cfg, "cpu").score
    trainer = GRPOTrainer(cfg, editor, PreparedDataset(run / "data"), reward, run, Accelerator(cpu=True))
    trainer.train(1)  # warm-up (lazy inits)
    spent["decode"] = 0.0
    start = len(trainer.history)
    trainer.train(1 + updates)
    rows = trainer.history[start:]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k.startswith("time/")}
    decode = spent["decode"] / len(rows)
    return {
        "view_size": view_size, "grid_px": 3 * view_size, "group_size": cfg.rl.group_size,
        "num_steps": cfg.rl.num_steps, "window_size": cfg.rl.window_size, "updates": len(rows),
        "rollout_s (denoise, excl. decode)": mean["time/rollout_s"] - decode, "decode_s": decode,
        "reward_s": mean["time/reward_s"], "policy_update_s": mean["time/update_s"],
        "total_s": sum(mean.values()), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def rollout_throughput(members: int, repeats: int) -> None:
    """Run under accelerate: each process rolls out its share of a group; prints members/s from the main process."""
    from accelerate import Accelerator

    from rl3dedit.editor import KontextGridEditor, build_tiny_pipeline
    from rl3dedit.rl import member_share

    acc = Accelerator(cpu=True)
    editor = KontextGridEditor(build_tiny_pipeline(0), max_sequence_length=32)
    share = member_share(members, acc.num_processes, acc.process_index)
    grid = torch.rand(3, 192, 192)
    kwargs = dict(num_steps=4, guidance_scale=2.5, noise_level=0.8, window=(0, 2))
    editor.rollout(grid, "warm up", group_size=1, seeds=[0], **kwargs)
    acc.wait_for_everyone()
    start = time.perf_counter()
    for r in range(repeats):
        editor.rollout(grid, "make it red", group_size=len(share), seeds=[r * 1000 + m for m in share], **kwargs)
    acc.wait_for_everyone()
    elapsed = time.perf_counter() - start
    if acc.is_main_process:
        print(json.dumps({"processes": acc.num_processes, "members_per_s": members * repeats / elapsed,
                          "seconds": elapsed}))


def scaling(members: int, repeats: int, threads: int) -> list[dict]:
    """members/s with 1 and 2 processes, `threads` torch threads each."""
    results = []
    for n in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        # `--multi_gpu` on a GPU-less machine = torchrun with n processes; Accelerator(cpu=True) then uses gloo.
        launcher = ["--multi_gpu"] if n > 1 else ["--cpu"]
        command = [sys.executable, "-m", "accelerate.commands.launch", *launcher, "--num_processes", str(n),
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", __file__,
                   "--throughput-worker", "--members", str(members), "--repeats", str(repeats)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            raise RuntimeError(f"{n}-process run failed:\n{done.stderr[-2000:]}")
        results.append(json.loads(lines[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--view-size", type=int, default=64)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--throughput-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process in --scaling")
    args = parser.parse_args()
    if args.throughput_worker:
        rollout_throughput(args.members, args.repeats)
        return
    if args.scaling:
        for row in scaling(args.members, args.repeats, args.threads):
            print(json.dumps(row))
        return
    print(json.dumps(phase_split(args.updates, args.view_size), indent=1))


if __name__ == "__main__":
    main()

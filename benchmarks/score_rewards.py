"""Do the view-set rewards rank consistent view sets above inconsistent ones on the real captures? (issues 14, 18)

Usage (with the captures `face/` and `stone_horse/` under `data/`; `--data-root DIR` works as well):
    export RL3DEDIT_DATA_ROOT=data
    nice -n 10 python benchmarks/score_rewards.py --fit face=runs/face/scene.ply --fit stone_horse=runs/horse/scene.ply
    nice -n 10 python benchmarks/score_rewards.py --rewards sfm,warp,vggt --verifier-weights /path/to/model.pt

For each capture (`load_capture`, undistorted, at `--downscale`), `--sets` view sets of `--views` neighbouring
frames (every `--stride`-th frame) are scored twice as consistent sets: the real frames, and renders of the capture's
fitted 3DGS (`--fit NAME=PLY`, e.g. from `rl3dedit fit`) at the same cameras. Each consistent set gets four
inconsistent variants (`rl3dedit.rewards.perturb`): every view hue-shifted by its own random angle, one view
replaced by a view of the other capture, the views shuffled against their cameras, one view shifted by
`--shift-px` pixels. Ranking accuracy = the fraction of (consistent set, its variant) pairs the reward orders
correctly (ties count as wrong). Rewards: `sfm` and `warp` (depth rendered from the fitted scene) need no weights;
`vggt-tiny` is the random tiny VGGT (what `score` used to default to), `vggt` is VGGT-1B from --verifier-weights.
Time per set is wall time per scored view set on this machine (the G = 5 sets of a group are scored in one call).
Prints a markdown table; `--json FILE` also writes every value.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from data_root import add_data_root_argument, data_root

from rl3dedit.config import load_config
from rl3dedit.render import render_images
from rl3dedit.rewards import build_reward
from rl3dedit.rewards.perturb import PERTURBATIONS
from rl3dedit.scene import load_capture, read_ply

CAPTURES = ("face", "stone_horse")  # each one's "replaced" views come from the other


def _reward(name: str, scene, weights: str | None):
    if name == "vggt-tiny":
        return build_reward("consistency", load_config("tiny"))
    if name == "vggt":
        if weights is None:
            raise SystemExit("--rewards vggt needs --verifier-weights")
        return build_reward("consistency", load_config("paper").override("verifier.model", weights))
    if name == "warp":
        return build_reward("warp", load_config("tiny"), scene=scene) if scene is not None else None
    return build_reward(name, load_config("tiny"))


def print_table(records: list[dict], timing: dict[str, list[float]], rewards: list[str]) -> None:
    """Markdown table: per reward and consistent source, correct orderings per perturbation, overall accuracy,
    the mean margin (consistent - inconsistent), the mean consistent score and the seconds per set."""
    perturbations = list(PERTURBATIONS)
    print("| reward | source | " + " | ".join(perturbations) + " | accuracy | mean margin | mean consistent "
          "| s per set |")
    print("|---" * (len(perturbations) + 6) + "|")
    for rname in rewards:
        for kind in ("real", "render"):
            rows = [r for r in records if r["reward"] == rname and r["source"] == kind]
            if not rows:
                continue
            cells = []
            for p in perturbations:
                sel = [r for r in rows if r["perturbation"] == p]
                cells.append(f"{sum(r['consistent'] > r['inconsistent'] for r in sel)}/{len(sel)}")
            correct = sum(r["consistent"] > r["inconsistent"] for r in rows)
            margin = sum(r["consistent"] - r["inconsistent"] for r in rows) / len(rows)
            mean = sum(r["consistent"] for r in rows) / len(rows)
            seconds = sum(timing[rname]) / len(timing[rname])
            print(f"| {rname} | {kind} | " + " | ".join(cells) + f" | {correct / len(rows):.2f} | {margin:+.4f} | "
                  f"{mean:.3f} | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", default=",".join(CAPTURES), help="which of the shipped captures to score")
    parser.add_argument("--fit", action="append", default=[], metavar="NAME=PLY",
                        help="fitted 3DGS of a capture (renders + warp depth); repeatable")
    parser.add_argument("--rewards", default="sfm,warp,vggt-tiny")
    parser.add_argument("--verifier-weights", default=None)
    parser.add_argument("--downscale", type=int, default=4)
    parser.add_argument("--sets", type=int, default=4)
    parser.add_argument("--views", type=int, default=9)
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--shift-px", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    add_data_root_argument(parser)
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="print the table of earlier --json runs together, without scoring")
    args = parser.parse_args()
    if args.from_json:
        runs = [json.loads(path.read_text()) for path in args.from_json]
        timing: dict[str, list[float]] = {}
        for run in runs:
            for name, values in run["seconds_per_set"].items():
                timing.setdefault(name, []).extend(values)
        print_table([r for run in runs for r in run["records"]], timing, list(timing))
        return

    root = data_root(parser, args.data_root)
    torch.set_num_threads(2)
    names = args.captures.split(",")
    fits = dict(item.split("=", 1) for item in args.fit)
    captures = {name: load_capture(root / name, downscale=args.downscale) for name in CAPTURES}
    background = tuple(load_config("tiny").render.background)
    records, timing = [], {}
    for name in names:
        c = CAPTURES.index(name)
        capture = captures[name]
        other = captures[CAPTURES[1 - c]].images
        scene = read_ply(fits[name]) if name in fits else None
        span = (args.views - 1) * args.stride + 1
        starts = torch.linspace(0, len(capture) - span, args.sets).round().long().tolist()
        rewards = {r: _reward(r, scene, args.verifier_weights) for r in args.rewards.split(",")}
        for s, start in enumerate(starts):
            index = list(range(start, start + span, args.stride))
            cameras = capture.cameras[index]
            sources = {"real": capture.images[index]}
            if scene is not None:
                sources["render"] = render_images(scene, cameras, background)
            for kind, views in sources.items():
                g = torch.Generator().manual_seed(args.seed * 1000 + c * 100 + s)
                variants = {p: fn(views, g, **({"other": other[int(torch.randint(len(other), (1,), generator=g))]}
                                               if p == "replaced" else {}))
                            for p, fn in PERTURBATIONS.items()}
                group = torch.stack([views, *variants.values()])
                for rname, reward in rewards.items():
                    if reward is None:
                        continue
                    t0 = time.perf_counter()
                    total = reward.score(group, cameras).total.tolist()
                    timing.setdefault(rname, []).append((time.perf_counter() - t0) / len(group))
                    for p, value in zip(variants, total[1:]):
                        records.append({"capture": name, "set": s, "frames": index, "source": kind, "reward": rname,
                                        "perturbation": p, "consistent": total[0], "inconsistent": value})
                    print(f"{name} set {s} {kind:6s} {rname:9s} consistent {total[0]:.3f} | "
                          + " ".join(f"{p} {v:.3f}" for p, v in zip(variants, total[1:])), flush=True)

    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.downscale=} ({captures[names[0]].cameras.width} px), "
          f"{args.views} views, {args.sets} sets per capture\n")
    print_table(records, timing, args.rewards.split(","))
    if args.json is not None:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "records": records,
                                         "seconds_per_set": timing}, indent=1))


if __name__ == "__main__":
    main()

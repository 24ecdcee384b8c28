"""`rl3dedit doctor`: what this machine can run before a long job (the same checks as every command's preflight)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import config_option, console, device_option, preset_option, resolve_config, set_option
from rl3dedit.files import dumps_json


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    device: Optional[str] = device_option(),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Where outputs would go (for the disk-space check)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout."),
) -> None:
    """Check torch/CUDA, the GPU, gsplat's kernels, nvcc, every configured model, disk space, and plan memory per
    stage for the preset; say what to change where something is missing or does not fit. Always exits 0."""
    from rl3dedit.preflight import disk_free_gib, memory_plan, nvcc_version, parameter_counts, preflight
    from rl3dedit.render import gsplat_status

    cfg = resolve_config(preset, config, sets, {"device": device})
    check = preflight(cfg, command="doctor", fit=True, edit=True)
    gsplat = gsplat_status()
    info = check.device
    on_gpu = info.device.startswith("cuda")
    budget = info.gpu_free_gib if on_gpu else info.host_available_gib
    counts = parameter_counts()
    plan = memory_plan(cfg, budget, counts)
    disk_free = disk_free_gib(out)
    report = {
        "preset": cfg.name,
        "device": check.device.__dict__,
        "gsplat": {"installed": gsplat.installed, "version": gsplat.version, "kernels": gsplat.kernels,
                   "reason": gsplat.reason},
        "nvcc": nvcc_version(),
        "models": [m.__dict__ | {"ok": m.ok} for m in check.models],
        "random_models": check.random_models,
        "disk": {"path": str(out.expanduser().resolve()), "free_gib": disk_free},
        "parameters": counts,
        "memory_budget": {"what": "free GPU memory" if on_gpu else "available host memory", "gib": budget},
        "memory_plan": [stage.__dict__ for stage in plan],
        "cpu_estimate_s": None if check.estimate is None else dict(check.estimate.stages, total=check.estimate.total_s),
        "problems": check.problems,
    }
    if as_json:
        typer.echo(dumps_json(report, indent=2, default=str))
    else:
        _print(report)


def _print(report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rl3dedit.preflight import format_duration

    d = report["device"]
    console.print(f"[bold]rl3dedit doctor[/]: preset {report['preset']}")
    console.print(f"torch {d['torch']}, CUDA build {d['cuda'] or 'none (CPU build)'}; {d['cpu_count']} CPU cores, "
                  f"{d['host_available_gib']:.1f} GiB host memory available" if d["host_available_gib"] is not None
                  else f"torch {d['torch']}, CUDA build {d['cuda'] or 'none (CPU build)'}")
    if d["gpu_name"]:
        console.print(f"GPU: {d['gpu_name']}, {d['gpu_free_gib']:.1f} of {d['gpu_total_gib']:.1f} GiB free; "
                      f"runs on {d['device']}")
    else:
        console.print("GPU: none found; planning for the CPU (device cpu). Real models on a CPU take hours to days.")
    g = report["gsplat"]
    if g["kernels"]:
        console.print(f"gsplat {g['version']}: CUDA kernels load")
    else:
        console.print(f"gsplat: {escape(g['reason'])}; the PyTorch rasterizer is used", highlight=False)
    console.print(f"nvcc: {report['nvcc'] or 'not found (gsplat needs it to compile its kernels, or prebuilt wheels)'}")
    disk = report["disk"]
    console.print(f"disk: {disk['free_gib']:.1f} GiB free at {disk['path']}" if disk["free_gib"] is not None
                  else f"disk: free space unknown at {disk['path']}")

    models = Table(title="models", show_lines=False)
    for column in ("model", "config key", "status", "resolves to"):
        models.add_column(column)
    for m in report["models"]:
        style = "red" if m["status"] == "missing" else ("yellow" if m["status"] == "random" else "")
        models.add_row(m["what"], m["key"], f"[{style}]{m['status']}[/]" if style else m["status"], escape(m["where"]))
    console.print(models)

    budget = report["memory_budget"]
    title = (f"memory plan (estimates) vs {budget['what']}: "
             + (f"{budget['gib']:.1f} GiB" if budget["gib"] is not None else "unknown"))
    plan = Table(title=title)
    for column in ("stage", "resident", "weights GiB", "activations GiB", "peak GiB", "fits", "if not"):
        plan.add_column(column, justify="right" if "GiB" in column else "left")
    for s in report["memory_plan"]:
        fits = "?" if s["fits"] is None else ("yes" if s["fits"] else "[red]no[/]")
        plan.add_row(s["stage"], ", ".join(s["resident"]), f"{s['weights_gib']:.2f}", f"{s['activations_gib']:.2f}",
                     f"{s['peak_gib']:.2f}", fits, "" if s["fits"] else escape(s["fix"]))
    console.print(plan)
    p = report["parameters"]
    console.print("parameters (built on the meta device): " + ", ".join(
        f"{name} {count / 1e9:.2f} B" for name, count in p.items()), highlight=False)
    if report["cpu_estimate_s"]:
        est = dict(report["cpu_estimate_s"])
        total = est.pop("total")
        console.print(f"edit job on this CPU (lower bound): {format_duration(total)} ("
                      + ", ".join(f"{k} {format_duration(v)}" for k, v in est.items()) + ")", highlight=False)
    if report["random_models"]:
        console.print(f"[yellow]random weights[/] for {', '.join(report['random_models'])}: numbers from them "
                      "check the pipeline, not quality")
    if report["problems"]:
        console.print("[bold red]missing or blocking[/] (edit, train and eval would stop on these):")
        for problem in report["problems"]:
            console.print(f"  - {escape(problem)}", highlight=False)
    else:
        console.print("[bold green]ready[/]: nothing missing for this preset")

"""`rl3dedit eval`: run a cases file through our edit (or score another method's renders) and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rl3dedit.cli._common import (
    config_option,
    console,
    device_option,
    fail,
    force_option,
    preset_option,
    resolve_config,
    set_option,
    start,
)

EVAL_FLAGS = {"editor": "--editor-model", "transformer_file": "--transformer-file", "lora": "--lora",
              "verifier": "--verifier-model", "clip": "--clip-model"}


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)


def evaluate(
    cases: Path = typer.Option(..., "--cases", help="Cases YAML (e.g. configs/eval/paper_style.yaml or configs/eval/tiny.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Evaluation folder: results.json, table.md, report.html, cases/."),
    preset: Optional[str] = preset_option(),
    config: Optional[Path] = config_option(),
    sets: Optional[list[str]] = set_option(),
    method_outputs: Optional[Path] = typer.Option(
        None, "--method-outputs", help="Score another method: DIR/<case_id>/eval_views/*.png (or edited.ply), optional timings.json."
    ),
    method_name: Optional[str] = typer.Option(None, "--method-name", help="Method name in the tables."),
    resume: bool = typer.Option(False, "--resume", help="Continue an evaluation in --out; finished cases are skipped."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder that relative scene paths resolve against (else $RL3DEDIT_DATA_ROOT)."),
    clip_model: Optional[str] = typer.Option(None, "--clip-model", help="CLIP for CLIP-T/CLIP-dir: hub id, local folder or tiny."),
    verifier: Optional[str] = typer.Option(None, "--verifier-model", help="VGGT weights for Ph-Loss and VGGT consistency."),
    editor_model: Optional[str] = typer.Option(None, "--editor-model", help="FLUX.1-Kontext diffusers folder or hub id (our edits)."),
    transformer_file: Optional[str] = typer.Option(None, "--transformer-file", help="Single-file transformer (our edits)."),
    lora: Optional[Path] = typer.Option(None, "--lora", help="LoRA adapter folder from `rl3dedit train` (our edits)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated subset of clip,ph_loss,ph_loss_rendered_depth,vggt,viescore,time."),
    device: Optional[str] = device_option(),
    force: bool = force_option(),
    cameras_only: bool = typer.Option(
        False, "--cameras-only", help="Only write OUT/cases/<id>/eval_cameras.json, for another method to render."
    ),
) -> None:
    """Evaluate edits on a benchmark: CLIP-T, CLIP-dir, Ph-Loss, VGGT consistency, VIEScore, time; per split."""
    from rl3dedit.eval import export_eval_cameras, load_cases, run_eval

    cfg = resolve_config(preset, config, sets, {
        "eval.clip_model": clip_model, "verifier.model": verifier, "device": device,
        "editor.model": editor_model, "editor.transformer_file": transformer_file,
        "editor.lora": str(lora) if lora else None,
        "eval.metrics": [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
    })
    roles = () if cameras_only else (
        (() if method_outputs else ("editor", "transformer_file", "lora"))
        + (("clip",) if "clip" in cfg.eval.metrics else ())
        + (("verifier",) if {"vggt", "ph_loss"} & set(cfg.eval.metrics) else ()))
    check = start(cfg, "eval", preset_given=bool(preset or config), force=force, flags=EVAL_FLAGS, roles=roles,
          edit=not (cameras_only or method_outputs))
    try:
        case_set = load_cases(cases, data_root=data_root)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    if cameras_only:
        try:
            paths = export_eval_cameras(cfg, case_set, out)
        except (FileNotFoundError, ValueError, OSError) as exc:
            fail(str(exc))
        console.print(f"[bold green]done[/]: evaluation cameras of {len(paths)} case(s) in {out}/cases/<id>/eval_cameras.json")
        return
    console.print(f"evaluating {len(case_set.cases)} case(s) from {case_set.path} (data root {case_set.data_root})")

    def progress(case_id: str, index: int, total: int, metrics=None) -> None:
        console.print(f"[bold]case {index + 1}/{total}[/]: {case_id}")

    try:
        run = run_eval(
            cfg, case_set, out, method_outputs=method_outputs, method_name=method_name, resume=resume,
            progress=progress,
        )
    except (FileExistsError, FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    print_summary(run, check.random_models)


def print_summary(run, random_models: list[str] = ()) -> None:
    from rich.table import Table

    from rl3dedit.eval import METRICS
    from rl3dedit.eval.table import SPLIT_TITLES, format_metric

    mark = f"; random models ({', '.join(random_models)}): checks the pipeline, not quality" if random_models else ""
    table = Table(title=f"{run.method}: mean per split (n/c = not computed{mark})")
    table.add_column("split")
    shown = [spec for spec in METRICS if spec.table1 or spec.key in ("clip_t", "vggt_total")]
    for spec in shown:
        table.add_column(spec.title, justify="right")
    table.add_column("cases ok", justify="right")
    for name, group in run.groups.items():
        ok = group.num_cases - group.num_failed
        table.add_row(SPLIT_TITLES.get(name, name), *[format_metric(s, group.metrics[s.key], ok) for s in shown],
                      f"{ok}/{group.num_cases}")
    console.print(table)
    for result in run.results:
        if result.status != "ok":
            console.print(f"[bold red]case {result.case_id} failed[/]: {result.error}")
    if run.resumed:
        console.print(f"resumed: {len(run.resumed)} case(s) taken from the earlier run")
    console.print(f"[bold green]done[/]: {run.out_dir} (results.json, table.md, report.html)")
    if any(result.status != "ok" for result in run.results):
        raise typer.Exit(1)  # the report is written; the exit code still tells scripts that a case failed

"""Helpers shared by the CLI commands: the common options, config resolution, the preflight, console, errors.

Flag vocabulary (the same in every command): `--preset`/`--config`/`--set KEY=VALUE` choose the config,
`--device`, `--out`/`-o`, `--overwrite` (replace an earlier rl3dedit run), `--force` (run a GPU-sized job on a CPU),
`--editor-model`/`--transformer-file`/`--lora`/`--verifier-model`/`--clip-model` name models, `--downscale` the
capture's image downscale, `--view-size` the longer side of rendered views, `--fit-iters`/`--refit-iters`/
`--edit-steps`/`--max-updates` count fit steps, refit steps, denoising steps and GRPO updates, `--seed` is the run
seed (fits, refits, view selection) and `--edit-seed` the editor's sampling seed.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from rl3dedit.config import RunConfig, load_config, resolve_device  # noqa: F401  (re-exported for the commands)

console = Console(stderr=True)

DEFAULT_PRESET = "tiny"
PRESET_HELP = ("Preset: tiny (the default: tiny random models on the CPU, checks the pipeline, not quality) or "
               "paper (the paper's models and sizes; needs a GPU and the weights).")
SET_HELP = "Override any config field, e.g. --set recon.refit_iters=300 (repeatable; YAML values)."
FORCE_HELP = "Run even when the preflight estimates a GPU-sized job on a CPU (hours to days)."


def preset_option() -> Any:
    return typer.Option(None, "--preset", help=PRESET_HELP)


def config_option() -> Any:
    return typer.Option(None, "--config", help="A run config YAML instead of a preset.")


def set_option() -> Any:
    return typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP)


def device_option() -> Any:
    return typer.Option(None, "--device", help="auto, cpu or cuda[:N] (default: the config's device).")


def overwrite_option() -> Any:
    return typer.Option(False, "--overwrite", help="Replace an earlier rl3dedit run in --out.")


def force_option() -> Any:
    return typer.Option(False, "--force", help=FORCE_HELP)


def quiet_third_party() -> None:
    """Silence the expected warnings of the libraries we drive (torchvision notices, dtype casts of tiny models,
    CLIP's 77-token truncation, deprecations); where the user should know, our own code logs a one-line note.
    `--verbose` keeps them."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    # The two libraries set their root logger's level when first imported; if they already are, set it here.
    # torchao (diffusers' int8 backend) reports kernels it cannot load on this machine; torch's pytree warns about
    # torchao's enum registration. Neither concerns the user.
    for name in ("transformers", "diffusers", "peft", "accelerate", "huggingface_hub", "torchao",
                 "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in ("PIL", "matplotlib", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    if "diffusers" in sys.modules:
        from diffusers.utils import logging as df_logging

        df_logging.set_verbosity_error()
    third_party = r"(diffusers|transformers|peft|accelerate|huggingface_hub|torch|torchvision|imageio|timm)(\.|$)"
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=third_party)


def parse_sets(items: list[str] | None) -> list[tuple[str, Any]]:
    """`KEY=VALUE` strings as (dotted key, YAML-parsed value) pairs."""
    pairs = []
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set {item!r}: expected KEY=VALUE, e.g. --set recon.refit_iters=300")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise typer.BadParameter(f"--set {item!r}: the value is not valid YAML ({exc})") from exc
        pairs.append((key.strip(), value))
    return pairs


def resolve_config(
    preset: str | None,
    config: Path | None,
    sets: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """The run config from `--config FILE` or `--preset NAME` (`DEFAULT_PRESET` when neither is given), then the
    command's flags (`overrides`: dotted key -> value, None = not given), then `--set` (last wins)."""
    if preset and config:
        raise typer.BadParameter("pass either --preset or --config, not both")
    try:
        cfg = load_config(config if config else (preset or DEFAULT_PRESET))
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    changes = [(k, v) for k, v in (overrides or {}).items() if v is not None] + parse_sets(sets)
    for key, value in changes:
        try:
            cfg = cfg.override(key, value)
        except KeyError as exc:
            raise typer.BadParameter(f"{exc.args[0]} (see the config YAML for the fields)") from exc
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise typer.BadParameter(f"{key}={value!r}: {exc}") from exc
    return cfg


def resolve_views_input(path: Path, which: str = "edited") -> tuple[Path, Path | None]:
    """The views folder and its cameras file inside what an rl3dedit command wrote, so `score` takes it directly:
    an edit run (`views/<which>/` with `which` edited or source, and the run's `cameras.json`), a render folder
    (`views/` + `cameras.json`), or a folder of images with `cameras.json` beside them. Anything else (a plain
    folder, a grid image) comes back unchanged with no cameras."""
    path = Path(path)
    if not path.is_dir():
        return path, None
    cameras = path / "cameras.json"
    for views in (path / "views" / which, path / "views"):
        if views.is_dir() and any(p.is_file() for p in views.iterdir()):
            return views, cameras if cameras.is_file() else None
    return path, cameras if cameras.is_file() else None


def fail(message: str, code: int = 1) -> None:
    """Print an error for the user and exit non-zero."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def start(
    cfg: RunConfig,
    command: str,
    *,
    preset_given: bool,
    out: Optional[Path] = None,
    overwrite: bool = False,
    force: bool = False,
    flags: dict[str, str] | None = None,
    roles: tuple[str, ...] | None = None,
    fit: bool = False,
    edit: bool = True,
    train: bool = False,
):
    """A command's first lines and its preflight: state the preset (and that it is the default), check every model,
    the device and the output folder, and exit with one message listing every problem. Returns the `Preflight`."""
    from rl3dedit.preflight import preflight

    default = " (the default; --preset paper for the paper's models)" if not preset_given else ""
    check = preflight(cfg, command=command, out_dir=out, force=force, roles=roles, flags=flags, fit=fit, edit=edit,
                      train=train)
    device = check.device.device if cfg.device == check.device.device else f"{cfg.device} ({check.device.device})"
    console.print(f"rl3dedit {command}: preset [bold]{escape(cfg.name)}[/]{default}, device {device}",
                  highlight=False)
    if out is not None:
        from rl3dedit.pipeline.outputs import OutputExistsError, check_output_dir

        try:
            check_output_dir(Path(out).expanduser(), overwrite=overwrite)
        except (OutputExistsError, PermissionError) as exc:  # PermissionError: errors.UnwritableOutputError
            check.problems.insert(0, str(exc))
    if check.random_models:
        console.print(f"[bold yellow]note:[/] random weights for {', '.join(check.random_models)}: every number "
                      "they produce is marked (random) and checks the pipeline, not quality", highlight=False)
    for note in check.notes:
        console.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False)
    if check.problems:
        fail(check.message())
    return check


class stage_progress:
    """A rich progress bar over a job's stages (`rl3dedit.progress.Progress`); a context manager yielding the
    callback. Without a terminal (logs, CI) the bar is off: the job logs each stage as a timestamped line."""

    def __enter__(self):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
            disable=not console.is_terminal,
        )
        self._progress.__enter__()
        self._task = None
        return self._update

    def _update(self, what: str, done: int, total: int, metrics=None) -> None:
        if self._task is None:
            self._task = self._progress.add_task(what, total=total if total > 0 else None)
        self._progress.update(self._task, description=what, completed=done)

    def __exit__(self, exc_type, exc, tb):
        if self._task is not None and exc_type is None:
            self._progress.update(self._task, description="done", completed=self._progress.tasks[0].total)
        return self._progress.__exit__(exc_type, exc, tb)

"""Helpers shared by the CLI commands: config resolution, console, errors."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rl3dedit.config import RunConfig, load_config

console = Console(stderr=True)


def resolve_config(preset: str | None, config: Path | None) -> RunConfig:
    """The run config from `--config FILE` or `--preset NAME` (tiny when neither is given)."""
    if preset and config:
        raise typer.BadParameter("pass either --preset or --config, not both")
    try:
        return load_config(config if config else (preset or "tiny"))
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def fail(message: str, code: int = 1) -> None:
    """Print an error for the user and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name

"""`rl3dedit` entry point: assembles the commands, each defined in its own module with `register(app)`."""

from __future__ import annotations

import importlib
import logging
import os

import typer

COMMAND_MODULES = ("demo", "fit", "render", "edit", "score", "prepare", "train", "eval_cmd")

app = typer.Typer(
    name="rl3dedit",
    help="Text-driven, multi-view consistent 3D Gaussian Splatting editing (RL3DEdit).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    from rich.logging import RichHandler

    from rl3dedit.cli._common import console

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # Logs go to stderr (the shared console) so that --json output on stdout stays machine-readable.
    # Library loggers below WARNING are noise for users of the CLI.
    for noisy in ("diffusers", "accelerate", "PIL", "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # transformers warns at import that torchvision is absent (we preprocess images ourselves).
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"rl3dedit.cli.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"rl3dedit.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

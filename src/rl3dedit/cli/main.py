"""`rl3dedit` entry point: assembles the commands, each defined in its own module with `register(app)`."""

from __future__ import annotations

import errno
import importlib
import logging
import os

import typer
from typer.core import TyperGroup

from rl3dedit.errors import RL3DEditError

COMMAND_MODULES = ("doctor", "demo", "capture", "fit", "render", "edit", "view", "score", "prepare", "train",
                   "eval_cmd")

# OS errors whose message (with the file name Python attaches) is all a user needs: no traceback for these.
_USER_OS_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR,
                   errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY)


class _ReportingGroup(TyperGroup):
    """Commands whose user errors (`rl3dedit.errors.RL3DEditError`, disk full, read-only or missing paths) end as
    one line on stderr and exit code 1 instead of a traceback; --verbose keeps the traceback for debugging."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (RL3DEditError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, RL3DEditError) and exc.errno not in _USER_OS_ERRORS:
                raise
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                logging.getLogger("rl3dedit").exception("error")
            from rich.markup import escape

            from rl3dedit.cli._common import console

            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_ReportingGroup,
    name="rl3dedit",
    help="Text-driven, multi-view consistent 3D Gaussian Splatting editing (RL3DEdit).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: boolean flags show as flags (typer's rich panels print `<bool>` after them).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from rl3dedit import __version__

        typer.echo(f"rl3dedit {__version__}")
        raise typer.Exit()


@app.callback()
def _configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging (and third-party warnings)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    from rich.logging import RichHandler

    from rl3dedit.cli._common import console, quiet_third_party

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # Logs go to stderr (the shared console) so that --json output on stdout stays machine-readable.
    if not verbose:
        quiet_third_party()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from rl3dedit.files import handle_sigterm_as_interrupt

    handle_sigterm_as_interrupt()  # so a stopped run removes its staging folder and lock, as on Ctrl-C


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

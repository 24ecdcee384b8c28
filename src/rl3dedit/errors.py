"""Errors caused by the user's input or environment, which the CLI reports as one line (no traceback).

Library code raises these (or subclasses of them) for a bad file, a bad value or an output folder it must not touch;
`rl3dedit.cli.main` catches `RL3DEditError` at the top and prints its message. The classes also derive from the
built-in error a caller would naturally catch (`ValueError`, `FileExistsError`, `OSError`), so existing
`except ValueError` code keeps working.
"""

from __future__ import annotations


class RL3DEditError(Exception):
    """Base of the errors whose message alone tells the user what to fix; the CLI prints it as one line."""


class InputError(RL3DEditError, ValueError):
    """A file or value the user gave is invalid; the message names the file (and frame / key) and the value."""


class OutputExistsError(RL3DEditError, FileExistsError):
    """An output folder exists and was not written by rl3dedit, another run is writing it, or it changed during
    the run; nothing there was touched."""


class HubError(RL3DEditError, FileNotFoundError):
    """A model could not be resolved from the Hugging Face Hub (offline, unreachable, timed out, not found, gated):
    to its caller the model is simply not available, as a missing local file is."""


class UnwritableOutputError(RL3DEditError, PermissionError):
    """The output location cannot be written (read-only file system, no permission); raised before any work."""

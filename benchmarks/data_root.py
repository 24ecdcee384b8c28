"""The folder benchmarks read real captures from: `--data-root`, else `$RL3DEDIT_DATA_ROOT`.

Eval cases files resolve relative scene paths against the same variable and the shipped training manifests expand
it, so one setting serves `rl3dedit eval`, `rl3dedit train` and these scripts. Scripts import this module as a
sibling (`python benchmarks/<script>.py` puts this folder on `sys.path`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rl3dedit.eval import DATA_ROOT_ENV


def add_data_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", type=Path, default=None,
        help=f"folder holding the captures (e.g. face/, stone_horse/); default ${DATA_ROOT_ENV}",
    )


def data_root(parser: argparse.ArgumentParser, given: Path | None, *, required: bool = True) -> Path | None:
    """`given`, else `$RL3DEDIT_DATA_ROOT`, as an existing folder; exits through `parser.error` when it is missing.

    With `required=False` the absence of both is not an error and None is returned (for optional measurements).
    """
    if given is None and os.environ.get(DATA_ROOT_ENV):
        given = Path(os.environ[DATA_ROOT_ENV])
    if given is None:
        if not required:
            return None
        parser.error(f"no data folder: pass --data-root DIR or set {DATA_ROOT_ENV} (a folder holding the captures)")
    root = given.expanduser().resolve()
    if not root.is_dir():
        parser.error(f"data folder {root} does not exist (from --data-root or {DATA_ROOT_ENV})")
    return root

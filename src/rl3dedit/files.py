"""Reading input files with errors that name them, and writing output files: atomically (a temporary sibling renamed into place, so no reader ever sees a partial file or
folder that looks whole) and, for JSON, strictly (non-finite floats become null). Every package writes through here."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder (same suffix); on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs should be as readable as a normally created file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(folder: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `folder` (and anything there) only when the block succeeds.

    The old folder is moved aside before the new one is renamed in, so a crash in between leaves either the old or
    the new folder under the final name, never a mixture. Callers that must not replace foreign folders check first
    (see `rl3dedit.pipeline.atomic_run_dir`).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        yield tmp
        if folder.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.replace(folder, trash / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def json_safe(value):
    """A copy of nested dicts/lists/tuples with non-finite floats replaced by None (strict JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data) -> Path:
    """Write `data` as indented strict JSON (see `json_safe`), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False))
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def read_yaml(path: str | Path, what: str):
    """Parse a YAML file; a missing file or invalid YAML raises an error naming `what` and the path."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc


def read_json(path: str | Path, what: str):
    """Parse a JSON file; a missing file or invalid JSON raises an error naming `what` and the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc

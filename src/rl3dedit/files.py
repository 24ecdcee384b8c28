"""Reading input files with errors that name them, and writing output files: atomically (a temporary sibling renamed into place, so no reader ever sees a partial file or
folder that looks whole) and, for JSON, strictly (non-finite floats become null). Every package writes through here.

Output folders are protected three ways: a folder rl3dedit did not write is never replaced or written into
(`claimed_dir`, `pipeline.atomic_run_dir`); a lock on the destination keeps two runs from writing one folder at once
(`destination_lock`); and the final rename of `atomic_dir` refuses when the destination changed during the run,
keeping the new result beside it. Staging folders left by killed runs are removed by the next run on the same
destination. New files and folders get the modes the user's umask asks for (not mkstemp's 0600 / mkdtemp's 0700).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rl3dedit.errors import InputError, OutputExistsError

try:  # POSIX advisory locks; without them (Windows) runs are not protected from each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

OWNER_MARKER = ".rl3dedit-run"
"""File inside every folder rl3dedit writes as a whole; only folders holding it may be replaced or reused."""
STAGING_MARKER = ".rl3dedit-staging"
"""File inside a staging (or moved-aside) folder while it is ours; removed before the folder is renamed into place."""

_held_locks: dict[Path, int] = {}


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask can only be read by setting it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(*, folder: bool) -> int:
    """The mode open()/mkdir() would give a new file or folder under the current umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of `path` without following a final symlink, or None when nothing is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in `path`'s folder (same suffix); on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, default_mode(folder=False))
    try:
        with _naming_full_disk(path):
            yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _naming_full_disk(path: Path) -> Iterator[None]:
    """Re-raise a disk-full error (which writers such as Pillow raise without a file name) naming `path`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) and not exc.filename:
            raise OSError(exc.errno, f"{exc.strerror or 'No space left on device'} while writing", str(path)) from exc
        raise


@contextmanager
def destination_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on writing `folder` (a `.NAME.lock` file beside it) for the block.

    A second holder, in this or another process, is refused at once with `OutputExistsError` rather than waiting
    (two runs writing one --out is a mistake to report, not to serialise). Nested use in one process is allowed.
    The lock file is removed on release; a holder that finds its lock file replaced treats that as contention.
    """
    folder = Path(folder).expanduser().absolute()
    folder = folder.parent.resolve() / folder.name  # one key per folder, however its parent was spelled
    if fcntl is None or folder in _held_locks:
        _held_locks[folder] = _held_locks.get(folder, 0) + 1
        try:
            yield
        finally:
            _held_locks[folder] -= 1
            if not _held_locks[folder]:
                del _held_locks[folder]
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.parent / f".{folder.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, default_mode(folder=False))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _identity(lock) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                raise BlockingIOError  # another holder removed and re-created the file after we opened it
        except BlockingIOError:
            raise OutputExistsError(
                f"{folder}: another rl3dedit run is writing to this folder right now; wait for it to finish or "
                "choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held_locks[folder] = 1
        try:
            yield
        finally:
            del _held_locks[folder]
            lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def clean_stale_staging(folder: str | Path) -> list[Path]:
    """Remove the staging folders an interrupted run (kill -9, power loss) left beside `folder`; call with the
    destination lock held, so no live run owns them. Only hidden `.NAME.tmp-*` / `.NAME.old-*` folders holding our
    staging marker are touched. When the kill fell between moving the old result aside and renaming the new one
    in, the old result is put back first. Returns the removed folders."""
    folder = Path(folder)
    removed = []
    if not folder.parent.is_dir():
        return removed
    for pattern in (f".{folder.name}.old-*", f".{folder.name}.tmp-*"):
        for stale in sorted(folder.parent.glob(pattern)):
            if not stale.is_dir() or stale.is_symlink() or not (stale / STAGING_MARKER).is_file():
                continue
            if pattern.endswith("old-*") and (stale / folder.name).is_dir() and _identity(folder) is None:
                os.rename(stale / folder.name, folder)
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def _staging_dir(folder: Path, kind: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{kind}-", dir=folder.parent))
    os.chmod(path, default_mode(folder=True))
    (path / STAGING_MARKER).write_text(f"{os.getpid()}\n")
    return path


def _keep_beside(tmp: Path, folder: Path) -> Path:
    """Rename a finished staging folder to a visible, unused `NAME.new-TIMESTAMP[-k]` sibling and return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        kept = folder.parent / (f"{folder.name}.new-{stamp}" + (f"-{k}" if k else ""))
        if _identity(kept) is None:
            try:
                os.rename(tmp, kept)
                return kept
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
    raise OutputExistsError(f"{folder}: could not find a free name beside it for the new result")


def _refuse_changed(tmp: Path, folder: Path, why: str) -> None:
    kept = _keep_beside(tmp, folder)
    raise OutputExistsError(f"{folder} {why} while this run was writing it; it was left untouched and the new "
                            f"result is in {kept}")


@contextmanager
def atomic_dir(folder: str | Path, *, replaceable: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `folder` (and anything there) only when the block succeeds.

    The destination is locked for the block (`destination_lock`) and stale staging folders of earlier killed runs
    are removed first. At the end the destination is checked again: if something was created, replaced or removed
    there during the block, or `replaceable(folder)` no longer holds, nothing is replaced and the new result is kept
    beside it under a visible name given in the raised `OutputExistsError`. Otherwise the old folder is moved aside
    and the new one renamed in, so a crash in between leaves either the old or the new folder under the final name
    (the next run restores the old one if the crash fell between the two renames). Callers that must not replace
    foreign folders check before the block (see `rl3dedit.pipeline.atomic_run_dir`).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with destination_lock(folder):
        clean_stale_staging(folder)
        before = _identity(folder)
        tmp = _staging_dir(folder, "tmp")
        try:
            with _naming_full_disk(folder):
                yield tmp
            (tmp / STAGING_MARKER).unlink()
            if _identity(folder) != before:
                _refuse_changed(tmp, folder, "was created, replaced or removed")
            if before is not None and replaceable is not None and not replaceable(folder):
                _refuse_changed(tmp, folder, "stopped being a folder this run may replace")
            if before is None:
                try:
                    os.rename(tmp, folder)  # fails when a non-empty folder appeared since the check above
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                        raise
                    _refuse_changed(tmp, folder, "was created")
            else:
                trash = _staging_dir(folder, "old")
                os.replace(folder, trash / folder.name)
                os.rename(tmp, folder)
                shutil.rmtree(trash, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def handle_sigterm_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, so `kill`, a job scheduler's stop or a container
    stop clean up staging folders and locks exactly as Ctrl-C does (Python's default SIGTERM exits at once)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def check_writable(folder: str | Path) -> None:
    """Refuse, before any work, an output folder whose nearest existing ancestor (the folder it will be created in,
    as a staging sibling) cannot be written: a read-only file system or missing permission."""
    from rl3dedit.errors import UnwritableOutputError

    folder = Path(folder).expanduser().absolute()
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UnwritableOutputError(f"{folder}: {parent} is not a folder, so the output cannot be created there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UnwritableOutputError(f"{folder}: cannot write in {parent} (read-only or no permission); choose "
                                    "another --out")


def is_ours(folder: str | Path) -> bool:
    """True when `folder` is absent, empty, or holds rl3dedit's owner marker (so rl3dedit may write into it)."""
    folder = Path(folder)
    if not folder.exists():
        return True
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / OWNER_MARKER).is_file())


@contextmanager
def claimed_dir(folder: str | Path, what: str, *, keep_on_error: Callable[[Path], bool] | None = None
                ) -> Iterator[Path]:
    """Hold `folder` for a command that writes into it incrementally (train, prepare, eval): lock it, refuse it
    unless `is_ours`, create it with the owner marker when needed, and yield it.

    When the block fails and this call created the folder, the folder is removed again unless
    `keep_on_error(folder)` says it holds resumable work, so a failed first run leaves no folder that looks used.
    """
    folder = Path(folder).expanduser().absolute()
    with destination_lock(folder):
        if folder.exists() and not folder.is_dir():
            raise OutputExistsError(f"{folder} exists and is not a folder; choose another --out for the {what}")
        if not is_ours(folder):
            raise OutputExistsError(f"{folder} exists, is not empty and was not written by rl3dedit; choose another "
                                    f"--out for the {what} (nothing in it was changed)")
        existed = folder.exists()
        created = not existed or not any(folder.iterdir())
        folder.mkdir(parents=True, exist_ok=True)
        if created:
            (folder / OWNER_MARKER).write_text(f"written by rl3dedit ({what})\n")
        try:
            yield folder
        except BaseException:
            if created and not (keep_on_error is not None and keep_on_error(folder)):
                if existed:  # the user's empty folder stays, emptied again
                    for child in folder.iterdir():
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
                else:
                    shutil.rmtree(folder, ignore_errors=True)
            raise


def json_safe(value):
    """A copy of nested dicts/lists/tuples with non-finite floats replaced by None (strict JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_json(data, **kwargs) -> str:
    """`json.dumps` of `data` as strict JSON: non-finite floats become null (`json_safe`), never `NaN`/`Infinity`,
    which most JSON readers reject. Use for every JSON rl3dedit prints or writes."""
    return json.dumps(json_safe(data), allow_nan=False, **kwargs)


def write_json(path: str | Path, data) -> Path:
    """Write `data` as indented strict JSON (see `json_safe`), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(data, indent=2))
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
        raise InputError(f"{path}: not valid YAML: {exc}") from exc


def read_json(path: str | Path, what: str):
    """Parse a JSON file; a missing file or invalid JSON raises an error naming `what` and the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc


def read_torch_file(path: str | Path, what: str, *, mmap: bool = False):
    """`torch.load(path, weights_only=True)` with errors naming the file: a pickle holding anything but tensors and
    plain containers is refused (it could run code) and says so; a corrupt or empty file says it is not readable."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) files cannot be mmapped
    except pickle.UnpicklingError as exc:
        # torch's own text suggests weights_only=False, exactly what must not be done with an untrusted file
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        named = f" (it references {found.group(1)})" if found else ""
        raise InputError(f"{path}: refused to load this {what}: it holds Python objects other than tensors, which "
                         f"could run code when unpickled{named}") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as exc:
        raise InputError(f"{path}: not a readable {what} ({type(exc).__name__}: {str(exc)[:200]})") from None


def read_weights(path: str | Path, what: str, *, mmap: bool = False, finite: bool = True) -> dict:
    """A flat state dict {name: tensor} from `.safetensors` (safetensors) or a torch file (`read_torch_file`).

    Errors name the file: missing, empty, corrupt, refused pickle, not a mapping of tensors, and (with `finite`)
    floating-point tensors holding NaN or inf, which would otherwise spread silently into every output.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise InputError(f"{path}: not a readable safetensors {what} ({str(exc)[:200]})") from None
    else:
        state = read_torch_file(path, what, mmap=mmap)
    if isinstance(state, dict) and set(state) == {"model"} and isinstance(state["model"], dict):
        state = state["model"]  # the common {"model": state_dict} checkpoint layout
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: expected a flat mapping of names to tensors in this {what}, found "
                         f"{type(state).__name__}")
    if not state:
        raise InputError(f"{path}: this {what} holds no tensors")
    if finite:
        bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise InputError(f"{path}: {len(bad)} tensor(s) of this {what} hold NaN or inf, e.g. {bad[0]!r}; the "
                             "file is damaged or came from a diverged run")
    return state


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _pixels(image, path: Path, deep_png: bool):
    """(H, W, 3) float32 in [0, 1] at the file's precision: 8-bit, 16-bit (greyscale or PNG colour) and float
    images are each scaled by their own range; `Image.convert("RGB")` would clip 16-bit values to white."""
    import numpy as np

    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 65535.0
    elif image.mode == "I":  # 32-bit integer storage, which Pillow also uses for 16-bit greyscale
        values = np.asarray(image, dtype=np.float64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"32-bit integer pixel values in [{values.min():.0f}, {values.max():.0f}] are outside "
                             "the 16-bit range rl3dedit reads")
        grey = (values / 65535.0).astype(np.float32)
    elif image.mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        if not np.isfinite(grey).all() or grey.min() < 0 or grey.max() > 1:
            raise ValueError("floating-point pixel values must be finite and within [0, 1]")
    elif deep_png:
        return _png16_colour(path)
    else:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return np.repeat(grey[:, :, None], 3, axis=2)


def _png16_colour(path: Path):
    """A 16-bit colour PNG at full precision (Pillow keeps only the high byte of each sample), via pypng."""
    import numpy as np
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        planes = info["planes"]
        array = np.vstack([np.asarray(row, dtype=np.float32) for row in rows]).reshape(height, width, planes)
    except png.Error as exc:
        raise ValueError(str(exc)) from exc
    array /= float(2 ** info["bitdepth"] - 1)
    return array[:, :, :3] if planes >= 3 else np.repeat(array[:, :, :1], 3, axis=2)


def read_image(path: str | Path):
    """Read an image file as an (H, W, 3) float32 array in [0, 1] (greyscale and alpha images converted to RGB).

    8-bit files are scaled by 1/255, 16-bit ones (greyscale in any format, colour PNG) by 1/65535, so no precision is
    lost and no range is clipped. Unreadable, truncated or oversized (decompression-bomb) files raise
    `rl3dedit.errors.InputError` naming the file.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            # the raw sample layout is known only before decoding (load() empties `tile`)
            deep_png = image.format == "PNG" and any(str(tile.args).endswith(";16B") for tile in image.tile)
            image.load()
            array = _pixels(image, path, deep_png)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image is too large to read safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: not a readable image: {exc}") from exc
    return np.ascontiguousarray(array, dtype=np.float32)


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse an existing output folder unless it is an rl3dedit run folder and `overwrite` is set, and a location
    that cannot be written (checked before a long run, not after it)."""
    out_dir = Path(out_dir).expanduser().absolute()
    check_writable(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} exists and is not a folder")
    if not is_ours(out_dir):
        raise OutputExistsError(f"{out_dir} exists, is not empty and was not written by rl3dedit; choose another --out")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out_dir} holds an earlier run; pass --overwrite to replace it")


@contextmanager
def atomic_run_dir(out_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes `out_dir` when the block succeeds, and is deleted when it fails."""
    out_dir = Path(out_dir).expanduser().resolve()
    check_output_dir(out_dir, overwrite=overwrite)
    # ownership is checked again at the final rename: a folder that appeared or changed meanwhile is kept
    with atomic_dir(out_dir, replaceable=is_ours) as tmp:
        yield tmp
        (tmp / OWNER_MARKER).write_text("written by rl3dedit\n")


def user_cache_dir() -> Path:
    """rl3dedit's folder in the user's cache: $XDG_CACHE_HOME/rl3dedit, or ~/.cache/rl3dedit when it is unset or
    empty (the XDG rule)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rl3dedit"

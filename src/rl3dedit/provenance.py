"""What a run ran with: library versions and the project's git revision, recorded in every run folder's metadata.

A result is only reproducible if the libraries that produced it are known: diffusers and transformers change
numerics between minor releases, so `edit`, `fit`, `train` and `eval` all write `provenance()` beside their outputs.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import rl3dedit

__all__ = ["TRACKED_PACKAGES", "git_revision", "library_versions", "provenance"]

# The libraries whose releases change our numbers or our loading paths.
TRACKED_PACKAGES = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "huggingface_hub",
                    "gsplat", "pycolmap", "numpy")


def library_versions() -> dict[str, str | None]:
    """Installed version of each tracked package, None where it is not installed (gsplat on CPU machines)."""
    versions: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The commit of the source tree rl3dedit runs from (with "-dirty" when it has local changes); None when it is
    not a git checkout (an installed wheel) or git is unavailable."""
    source = Path(rl3dedit.__file__).resolve().parent
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                  timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{revision}-dirty" if dirty else revision or None


def provenance() -> dict[str, object]:
    """The metadata block every run folder records under the key "provenance"."""
    return {"rl3dedit": rl3dedit.__version__, "git_revision": git_revision(), "python": platform.python_version(),
            "platform": platform.platform(), "libraries": library_versions()}

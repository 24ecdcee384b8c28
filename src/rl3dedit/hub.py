"""Model files from the Hugging Face Hub that fail fast, with a message saying what really happened.

Every model rl3dedit can take by hub id (the FLUX.1-Kontext pipeline, a single transformer file, VGGT, CLIP) is
resolved here before its library loads it:

1. a file already in the local cache is used as is (and the library is told `local_files_only`, so it makes no
   network call that could hang);
2. with `HF_HUB_OFFLINE` set and nothing cached, the error says exactly that;
3. otherwise one metadata request for the file must answer within an overall deadline (`RL3DEDIT_HUB_TIMEOUT`,
   default 15 s, which also covers DNS and an endpoint that accepts connections and never answers). A missing
   repository or file, a gated repository, an unreachable host and a silent one each get their own message. Only
   then does the real download start (it may take long, but the server has answered).

LPIPS weights are local files only (`rewards.lpips`), so they never reach the hub.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from rl3dedit.errors import HubError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 15.0
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class HubFileMissingError(HubError):
    """The repository exists and answered, but the requested file is not in it."""


@dataclass(frozen=True)
class HubFile:
    """Where a hub file can be read from. `local_only`: pass `local_files_only=True` to the library (the cached
    copy is used without any network call); `path`: the cached file, or None when it is still to be downloaded."""

    repo_id: str
    filename: str
    local_only: bool
    path: Path | None


def hub_timeout() -> float:
    """The overall deadline for the first answer of the hub, in seconds (`RL3DEDIT_HUB_TIMEOUT`)."""
    try:
        value = float(os.environ.get("RL3DEDIT_HUB_TIMEOUT", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it (at import) or as set since."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def looks_like_repo_id(text: str) -> bool:
    """`owner/name` that is not an existing local path."""
    return bool(_REPO_ID.match(text)) and not Path(text).expanduser().exists()


def cached_path(repo_id: str, filename: str) -> Path | None:
    """The file from the local hub cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001 - an invalid id or unreadable cache both mean "not cached"
        return None
    return Path(found) if isinstance(found, str) else None


def endpoint() -> str:
    """The hub address huggingface_hub uses (HF_ENDPOINT, read when it was imported)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def _call_with_deadline(fn, timeout: float):
    """fn() in a daemon thread; TimeoutError when it has not returned after `timeout` seconds (it is abandoned)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="rl3dedit-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


_answered: set[tuple[str, str, str]] = set()
"""(endpoint, repo id, file) the hub has answered for in this process. The preflight, the weight check and the
loader each resolve the same files; each answer can take up to the deadline, so one run asks about a file once."""


def probe(repo_id: str, filename: str, *, what: str, hint: str, timeout: float | None = None) -> None:
    """One metadata request for `repo_id`/`filename` that must answer within `timeout` (default `hub_timeout()`);
    raises `HubError` (`HubFileMissingError` for a missing file) naming the true reason and `hint`. A file the hub
    already answered for in this process is not asked about again; failures are."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    timeout = hub_timeout() if timeout is None else timeout
    address = endpoint()
    if (address, repo_id, filename) in _answered:
        return
    try:
        _call_with_deadline(lambda: get_hf_file_metadata(hf_hub_url(repo_id, filename), timeout=timeout), timeout)
        _answered.add((address, repo_id, filename))
    except GatedRepoError:
        raise HubError(f"{what} {repo_id!r} is gated: accept its licence at {address}/{repo_id} and log in "
                       f"(`hf auth login` or HF_TOKEN); {hint}") from None
    except RepositoryNotFoundError:
        raise HubError(f"{what} {repo_id!r}: no such repository on {address} (or it is private and no token "
                       f"grants access); {hint}") from None
    except RevisionNotFoundError as exc:
        raise HubError(f"{what} {repo_id!r}: {exc}; {hint}") from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 404:
            raise HubFileMissingError(f"{what} {repo_id!r} has no file {filename!r}; {hint}") from None
        raise HubError(f"{what} {repo_id!r}: {address} answered HTTP {status}: {str(exc).splitlines()[0]}; "
                       f"{hint}") from None
    except TimeoutError:
        raise HubError(f"{what} {repo_id!r}: the hub at {address} did not answer within {timeout:g} s (no network, "
                       f"a proxy that holds the connection, or a stalled endpoint; RL3DEDIT_HUB_TIMEOUT sets the "
                       f"limit); {hint}") from None
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS failure, TLS errors: all "unreachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise HubError(f"{what} {repo_id!r}: cannot reach the hub at {address} ({type(exc).__name__}: "
                       f"{first[:200]}); {hint}") from None


def resolve(repo_id: str, filename: str, *, what: str, hint: str, timeout: float | None = None) -> HubFile:
    """Where to read `filename` of hub repo `repo_id` from, decided within the deadline (module docstring).

    Cached and offline: the cache. Cached and online: the hub is asked once (so a newer revision is fetched), and
    if it cannot answer the cached copy is used with a warning. Not cached: offline is an error saying so; online
    the probe must succeed.
    """
    cached = cached_path(repo_id, filename)
    if offline():
        if cached is not None:
            return HubFile(repo_id, filename, True, cached)
        raise HubError(f"{what} {repo_id!r} ({filename}) is not in the local cache and HF_HUB_OFFLINE is set; "
                       f"{hint}")
    try:
        probe(repo_id, filename, what=what, hint=hint, timeout=timeout)
    except HubError as exc:
        if cached is None or isinstance(exc, HubFileMissingError):
            raise
        logger.warning("%s; using the cached copy %s", exc, cached)
        return HubFile(repo_id, filename, True, cached)
    return HubFile(repo_id, filename, False, cached)


def hub_file(repo_id: str, filename: str, *, what: str, hint: str, timeout: float | None = None) -> Path:
    """The local path of one hub file: cached, or downloaded once `resolve` has seen the hub answer."""
    from huggingface_hub import hf_hub_download

    found = resolve(repo_id, filename, what=what, hint=hint, timeout=timeout)
    if found.local_only and found.path is not None:
        return found.path
    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as exc:  # noqa: BLE001 - the transfer failed after the hub answered (disk full, dropped link)
        if isinstance(exc, OSError) and getattr(exc, "errno", None) is not None:
            raise  # disk full and the like: the CLI reports the OS error itself
        raise HubError(f"{what} {repo_id!r}: downloading {filename} failed ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); {hint}") from None

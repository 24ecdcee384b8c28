"""Hub resolution fails fast with a true message (issue 17 item 7): offline, unreachable and silent endpoints,
missing repositories and files, and the cached copy used when the hub cannot answer. No test leaves localhost."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

import rl3dedit.hub as hub
from rl3dedit.errors import HubError


@pytest.fixture
def online(monkeypatch):
    """Pretend to be online against a local endpoint (conftest sets HF_HUB_OFFLINE=1 for the session)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def use(endpoint: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")

    return use


@pytest.fixture
def silent_endpoint():
    """A TCP server that accepts connections and never answers (the case a TCP probe cannot catch)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def answering_endpoint():
    """An HTTP server answering 404 for every path except one repository's config.json (200 with an etag)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            if self.path.startswith("/owner/repo/resolve/main/config.json"):
                self.send_response(200)
                self.send_header("ETag", '"abc"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("Content-Length", "2")
            else:
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound" if "/other/" in self.path else "EntryNotFound")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_offline_and_not_cached_says_offline():
    with pytest.raises(HubError, match="not in the local cache and HF_HUB_OFFLINE is set; pass PATH"):
        hub.resolve("owner/repo", "config.json", what="CLIP model", hint="pass PATH")


def test_a_silent_endpoint_fails_within_the_deadline_with_a_true_message(online, silent_endpoint):
    online(silent_endpoint)
    with pytest.raises(HubError, match=r"did not answer within 1 s") as info:
        hub.resolve("owner/repo", "config.json", what="VGGT weights", hint="pass a local path", timeout=1.0)
    assert "HF_HUB_OFFLINE" not in str(info.value)


def test_an_unreachable_endpoint_says_unreachable_not_offline(online):
    with socket.socket() as probe_socket:  # a port nothing listens on
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    online(f"http://127.0.0.1:{port}")
    with pytest.raises(HubError, match=r"cannot reach the hub at http://127.0.0.1") as info:
        hub.hub_file("owner/repo", "model.safetensors", what="transformer file", hint="pass a local file",
                     timeout=5.0)
    assert "HF_HUB_OFFLINE" not in str(info.value)


def test_missing_repository_and_missing_file_are_told_apart(online, answering_endpoint):
    online(answering_endpoint)
    hub.probe("owner/repo", "config.json", what="CLIP model", hint="h", timeout=5.0)  # answers: no error
    with pytest.raises(hub.HubFileMissingError, match="has no file 'model.pt'"):
        hub.probe("owner/repo", "model.pt", what="VGGT weights", hint="h", timeout=5.0)
    with pytest.raises(HubError, match="no such repository"):
        hub.probe("other/repo", "config.json", what="CLIP model", hint="h", timeout=5.0)


def test_the_hub_is_asked_about_a_file_once_per_process_but_failures_again(online, answering_endpoint, monkeypatch):
    import huggingface_hub

    online(answering_endpoint)
    calls: list[str] = []
    real = huggingface_hub.get_hf_file_metadata
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url, **kw: calls.append(url) or real(url, **kw))
    for _ in range(3):  # preflight, weight check, loader
        hub.probe("owner/repo", "config.json", what="CLIP model", hint="h", timeout=5.0)
    assert len(calls) == 1
    for _ in range(2):
        with pytest.raises(hub.HubFileMissingError):
            hub.probe("owner/repo", "model.pt", what="VGGT weights", hint="h", timeout=5.0)
    assert len(calls) == 3


def test_a_cached_file_is_used_when_the_hub_cannot_answer(online, silent_endpoint, monkeypatch, tmp_path):
    cached = tmp_path / "config.json"
    cached.write_text("{}")
    monkeypatch.setattr(hub, "cached_path", lambda repo_id, filename: cached)
    online(silent_endpoint)
    found = hub.resolve("owner/repo", "config.json", what="CLIP model", hint="h", timeout=0.5)
    assert found.local_only and found.path == cached
    assert hub.hub_file("owner/repo", "config.json", what="CLIP model", hint="h", timeout=0.5) == Path(cached)


def test_repo_ids_are_told_from_paths(tmp_path):
    (tmp_path / "a").mkdir()
    assert hub.looks_like_repo_id("openai/clip-vit-large-patch14")
    assert not hub.looks_like_repo_id(str(tmp_path / "a"))
    assert not hub.looks_like_repo_id("./local/folder") and not hub.looks_like_repo_id("one/two/three")

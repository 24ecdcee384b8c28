"""rl3dedit view: splat conversion, edit-run reading, the CLI, and the viewer in real headless Chromium."""

import base64
import io
import itertools
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from rl3dedit.cli.main import app
from rl3dedit.scene import SH_C0, write_cameras_json, write_ply
from rl3dedit.synthetic import make_synthetic_capture
from rl3dedit.views import save_image

viser = pytest.importorskip("viser", reason="the viewer needs viser (pip install 'rl3dedit[view]')")

from rl3dedit.viewer import HOST, EditedViews, SceneViewer, read_edit_run, splat_arrays  # noqa: E402
from test_eval_report import CHROMIUM, HEADLESS_FLAGS  # noqa: E402

# viser's splat mesh gives three.js a 2-component "position" attribute (quad corners), so three.js logs this once per
# splat object whatever the data (viser client src/Splatting/GaussianSplatsHelpers.ts,
# https://github.com/nerfstudio-project/viser). It is the only console error tolerated below.
VISER_SPLAT_BOUNDS_ERROR = "THREE.BufferGeometry.computeBoundingSphere(): Computed radius is NaN"


def _scenes():
    scene, capture = make_synthetic_capture(num_views=9, size=32, seed=0, num_gaussians=600)
    edited = make_synthetic_capture(num_views=9, size=32, seed=0, num_gaussians=600)[0]
    edited.sh_dc = -edited.sh_dc  # the complementary colours: an edit any screenshot can see
    return scene, edited, capture


def test_splat_arrays_match_scipy_rotations_and_the_inria_colour_and_opacity():
    scene, _, _ = _scenes()
    arrays = splat_arrays(scene)
    quats = scene.quats.double().numpy()
    rotations = Rotation.from_quat(quats[:, [1, 2, 3, 0]]).as_matrix()  # scipy is xyzw, the scene wxyz
    scales = np.exp(scene.log_scales.double().numpy())
    expected = np.einsum("nij,nj,nkj->nik", rotations, scales**2, rotations)
    np.testing.assert_allclose(arrays["covariances"], expected, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(arrays["rgbs"], np.clip(scene.sh_dc.numpy() * SH_C0 + 0.5, 0, 1), atol=1e-6)
    np.testing.assert_allclose(arrays["opacities"][:, 0], torch.sigmoid(scene.opacity_logits).numpy(), atol=1e-6)
    assert arrays["centers"].shape == (scene.means.shape[0], 3) and arrays["centers"].dtype == np.float32


def _edit_run(folder: Path, nested: bool = True) -> None:
    scene, edited, capture = _scenes()
    write_ply(scene, folder / "base" / "scene.ply")
    write_ply(edited, folder / "edited.ply")
    write_cameras_json(capture.cameras[:3], folder / "cameras.json")
    for i in range(3):
        if nested:
            save_image(capture.images[i], folder / "views" / "source" / f"{i:02d}.png")
            save_image(1 - capture.images[i], folder / "views" / "edited" / f"{i:02d}.png")
        else:
            save_image(capture.images[i], folder / "views" / f"source_{i:02d}.png")
            save_image(1 - capture.images[i], folder / "views" / f"edited_{i:02d}.png")


@pytest.mark.parametrize("nested", [True, False])
def test_read_edit_run_finds_scenes_cameras_and_view_images(tmp_path, nested):
    _edit_run(tmp_path, nested)
    run = read_edit_run(tmp_path)
    assert run.source_ply == tmp_path / "base" / "scene.ply" and run.edited_ply == tmp_path / "edited.ply"
    assert run.views is not None and len(run.views.cameras) == 3
    assert run.views.source.shape == run.views.edited.shape == (3, 3, 32, 32)
    torch.testing.assert_close(run.views.edited, 1 - run.views.source, atol=1 / 255, rtol=0)


def test_view_command_prints_a_localhost_url_and_stops(tmp_path):
    _edit_run(tmp_path / "run")
    result = CliRunner().invoke(app, ["view", str(tmp_path / "run"), "--exit-after", "0.2"])
    assert result.exit_code == 0, result.output
    assert f"http://{HOST}:" in result.output
    missing = CliRunner().invoke(app, ["view", str(tmp_path / "nope.ply")])
    assert missing.exit_code == 1 and "nope.ply does not exist" in " ".join(missing.output.split())


def test_viewer_binds_loopback_only_and_serves_the_client():
    scene, edited, _ = _scenes()
    with SceneViewer(scene, edited) as viewer:
        assert viewer.url.startswith("http://127.0.0.1:")
        # 127.0.0.2 is loopback too: a server bound to 0.0.0.0 would answer there, one bound to 127.0.0.1 does not
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", viewer.port), timeout=5).close()
        with urllib.request.urlopen(viewer.url, timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read(4096).lower()
        with pytest.raises(ValueError, match="cannot show 'sideways'"):
            viewer.show("sideways")


class _DevTools:
    """Headless Chromium driven over the DevTools protocol: navigate, collect console events, screenshot."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        profile.mkdir(parents=True)
        command = [CHROMIUM, *HEADLESS_FLAGS, f"--user-data-dir={profile}", "--enable-unsafe-swiftshader",
                   "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=800,600",
                   "about:blank"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "HOME": str(profile)})
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as listing:
            page = next(t for t in json.load(listing) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait(self, seconds: float) -> None:
        """Let the page run (and collect its events) for `seconds` of real time."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=left)))
            except TimeoutError:
                break

    def screenshot(self) -> np.ndarray:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float32)

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params["exceptionDetails"])[:300])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return errors

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=20)


CENTRE = (slice(150, 450), slice(150, 650))
"""Screenshot pixels the synthetic splats fill (800x600 window; the viser panel sits top right)."""


def _first_frame(browser: _DevTools, ready, attempts: int = 30) -> np.ndarray:
    """The first screenshot (one a second) for which `ready(shot)` holds, else the last one."""
    for _ in range(attempts):
        browser.wait(1.0)
        shot = browser.screenshot()
        if ready(shot):
            break
    return shot


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)")
def test_viewer_renders_the_scene_in_headless_chromium_and_toggles_before_after(tmp_path):
    scene, edited, capture = _scenes()
    views = EditedViews(capture.cameras[:3], capture.images[:3], 1 - capture.images[:3])
    with SceneViewer(scene, edited, views=views) as viewer:
        browser = _DevTools(tmp_path / "profile")
        try:
            browser.call("Page.navigate", url=viewer.url)
            for _ in range(200):
                if viewer.num_clients():
                    break
                browser.wait(0.1)
            assert viewer.num_clients() == 1, "the page never connected to the viewer's websocket"
            # Poll rather than sleep a fixed time: on a loaded machine the splat sort and first frames take longer.
            after = _first_frame(browser, lambda shot: shot[CENTRE].std() > 20)
            viewer.show("before")
            before = _first_frame(browser, lambda shot: np.abs(shot[CENTRE] - after[CENTRE]).mean() > 3)
            errors = browser.console_errors()
        finally:
            browser.close()
    assert after[CENTRE].std() > 20, "the canvas looks blank"
    assert np.abs(after[CENTRE] - before[CENTRE]).mean() > 3, "toggling before/after did not change the canvas"
    assert [e for e in errors if VISER_SPLAT_BOUNDS_ERROR not in e] == []

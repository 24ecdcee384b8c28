"""report.html: self-contained, escapes user text, and loads in real headless Chromium without errors."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rl3dedit.eval.cases import SPLITS
from rl3dedit.eval.report import render_report, turntable_strip
from rl3dedit.eval.results import METRIC_KEYS, CaseResult, MetricValue, aggregate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--no-default-browser-check", "--disable-sync",
                  "--disable-domain-reliability", "--disable-breakpad", "--no-pings",
                  # no host name resolves (update, DoH and metrics hosts included) except the loopback the viewer's
                  # local server listens on
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                  "--disable-features=DnsOverHttps,AsyncDns,OptimizationHints,MediaRouter,Translate,"
                  "NetworkTimeServiceQuerying,AutofillServerCommunication,CertificateTransparencyComponentUpdater"]
"""How every browser test starts Chromium (plus a fresh --user-data-dir); test_viewer.py reuses them. The flags
alone still leave Chromium's IPv6 reachability probe (a UDP connect to a public DNS address), so tests that load
only files also run the browser in an empty network namespace (`NO_NETWORK`)."""


def _no_network_prefix() -> list[str]:
    """`unshare -rn` (a new user + network namespace with no interface up) when this machine allows it, else []."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    try:
        ok = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return [unshare, "-rn"] if ok else []


NO_NETWORK = _no_network_prefix()


def _png(path: Path, color: tuple[int, int, int], size=(48, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), color, dtype=np.uint8)).save(path)


def _mp4(path: Path, frames: int = 6) -> None:
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=6, codec="libx264", macro_block_size=1, ffmpeg_log_level="error") as writer:
        for i in range(frames):
            writer.append_data(np.full((32, 64, 3), (25 * i) % 256, dtype=np.uint8))


def _report(out: Path) -> tuple[str, list[CaseResult]]:
    ok_metrics = {k: MetricValue(0.5) for k in METRIC_KEYS}
    ok_metrics["viescore"] = MetricValue.skipped("no judge endpoint")
    _png(out / "cases/a/eval_sheet.png", (200, 30, 30))
    _png(out / "cases/a/edit/before_after.png", (30, 200, 30))
    _mp4(out / "cases/a/edit/turntable.mp4")
    turntable_strip(out / "cases/a/edit/turntable.mp4", out / "cases/a/turntable_strip.png", num_frames=4)
    files = {"eval_sheet": "cases/a/eval_sheet.png", "before_after": "cases/a/edit/before_after.png",
             "turntable": "cases/a/edit/turntable.mp4", "turntable_strip": "cases/a/turntable_strip.png"}
    details = {"captions": {"source": "a red cube", "target": "a blue cube"}, "eval_cameras": "held_out every 1"}
    results = [
        CaseResult("a", "in_distribution", "make it <b>blue</b>", "ok", ok_metrics, details, files),
        CaseResult("b-2", "new_scene", "x <script>alert(1)</script>", "error", error="RuntimeError: <boom>",
                   traceback="Traceback (most recent call last):\n  ...\nRuntimeError: <boom>"),
    ]
    page = render_report(results, aggregate(results, SPLITS), out_dir=out, title="tiny eval", method="RL3DEdit",
                         judge_model=None)
    (out / "report.html").write_text(page)
    return page, results


def test_report_is_self_contained_and_escaped(tmp_path):
    page, _ = _report(tmp_path)
    assert page.count('data-case-id="') == 2
    assert page.count("data:image/png;base64,") == 3 and "data:video/mp4;base64," in page
    assert not re.search(r'(src|href)="(?!data:|#)', page), "external reference in report.html"
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "RuntimeError: &lt;boom&gt;" in page
    assert "not computed: no judge endpoint" in page


def test_turntable_strip_has_the_requested_frames(tmp_path):
    _mp4(tmp_path / "t.mp4", frames=10)
    turntable_strip(tmp_path / "t.mp4", tmp_path / "s.png", num_frames=5)
    assert Image.open(tmp_path / "s.png").size == (5 * 64, 32)


def open_in_chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    """(dumped DOM, browser log) of `page` loaded in headless Chromium with a fresh profile."""
    command = [
        *NO_NETWORK, CHROMIUM, *HEADLESS_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
        "--v=0", "--virtual-time-budget=5000", "--dump-dom", page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)")
def test_report_opens_in_headless_chromium(tmp_path):
    out = tmp_path / "eval"
    _, results = _report(out)
    dom, log = open_in_chromium(out / "report.html", tmp_path)
    for result in results:
        assert f'data-case-id="{result.case_id}"' in dom
    status = re.search(r'<p id="status" data-ready="1">([^<]*)</p>', dom)
    assert status, "the page's load handler did not run"
    assert status.group(1) == "ready: 2 cases, 3 images, 0 broken, 0 errors"
    assert re.search(r'<pre id="js-errors"></pre>', dom), "JavaScript errors recorded in the page"
    console = [line for line in log.splitlines() if "CONSOLE" in line and "report.html" in line]
    assert console == [], console


def _outbound_connects(strace_log: str) -> list[str]:
    """connect() calls to a non-loopback IPv4/IPv6 address that succeeded (a refused or unroutable attempt sends
    nothing)."""
    found = []
    for line in strace_log.splitlines():
        if "connect(" not in line or not ("AF_INET" in line) or "= 0" not in line.rsplit(")", 1)[-1]:
            continue
        if re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"', line):
            continue
        found.append(line.strip())
    return found


STRACE = shutil.which("strace")


@pytest.mark.skipif(CHROMIUM is None or STRACE is None, reason="needs chromium and strace")
def test_headless_chromium_opens_no_outbound_connection(tmp_path):
    """The report page loads with networking really off: under strace, no connect() to a non-loopback address
    succeeds (before the fix Chromium resolved update hosts and connected to a public DNS server on port 443)."""
    probe = subprocess.run([STRACE, "-f", "-qq", "-e", "trace=connect", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode(errors='replace')[:200]}")
    page = tmp_path / "page.html"
    page.write_text('<html><body><img src="https://example.com/x.png"><p id="x">ok</p></body></html>')
    log = tmp_path / "strace.log"
    command = [STRACE, "-f", "-qq", "-e", "trace=connect", "-o", str(log), *NO_NETWORK, CHROMIUM, *HEADLESS_FLAGS,
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert '<p id="x">ok</p>' in done.stdout
    assert "connect(" in log.read_text(), "strace recorded nothing; the check would be vacuous"
    assert _outbound_connects(log.read_text()) == []

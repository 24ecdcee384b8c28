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
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", page.as_uri(),
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

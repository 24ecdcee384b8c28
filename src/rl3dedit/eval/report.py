"""`report.html`: one self-contained page (no external requests) with the aggregate tables and, per case, its
metrics, the novel-view renders before and after, the edit's before/after grids and its turntable.

Images are embedded as base64 PNG; a turntable is embedded as an mp4 `<video>` when small enough and always as a
strip of frames. A small script records JavaScript errors into `#js-errors` and writes a summary into `#status`
once the page has loaded (how many cases are shown, how many images failed to decode), so a headless browser can
check the page with `--dump-dom`.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import torch

from rl3dedit.eval.results import METRICS, CaseResult, GroupSummary
from rl3dedit.eval.table import SPLIT_TITLES, format_metric, format_seconds

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.case { border-top: 2px solid #888; padding-top: 1em; margin-top: 2em; }
.case.error h2 { color: #b00; }
.nc { color: #999; }
img, video { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
video { width: 512px; }
figure { margin: 0.5em 0 1em; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.wide { overflow-x: auto; }
#js-errors:empty { display: none; }
#js-errors { color: #b00; }
"""

_ERROR_HOOK = """
window.__reportErrors = [];
function __recordError(message) {
  window.__reportErrors.push(String(message));
  var box = document.getElementById('js-errors');
  if (box) { box.textContent = window.__reportErrors.join('\\n'); }
}
window.addEventListener('error', function (event) {
  __recordError('error: ' + (event.message || (event.target && event.target.tagName) || 'unknown'));
}, true);
window.addEventListener('unhandledrejection', function (event) { __recordError('rejection: ' + event.reason); });
"""

_STATUS_SCRIPT = """
window.addEventListener('load', function () {
  var cases = document.querySelectorAll('section.case').length;
  var images = document.querySelectorAll('img');
  var broken = 0;
  images.forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { broken += 1; return; }
    // Small renders (64-px tiny views) are shown at twice their size, pixelated, to be readable.
    if (img.naturalWidth < 640) { img.style.width = (2 * img.naturalWidth) + 'px'; }
  });
  if (broken) { __recordError('broken images: ' + broken); }
  var status = document.getElementById('status');
  status.dataset.ready = '1';
  status.textContent = 'ready: ' + cases + ' cases, ' + images.length + ' images, ' + broken + ' broken, '
    + window.__reportErrors.length + ' errors';
});
"""


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def turntable_strip(video: Path, out_png: Path, num_frames: int = 8) -> None:
    """Save `num_frames` evenly spaced frames of an mp4 side by side as one PNG (read with imageio-ffmpeg)."""
    import imageio.v2 as imageio
    from PIL import Image

    reader = imageio.get_reader(video)
    try:
        frames = [torch.from_numpy(frame.copy()) for frame in reader]
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"{video} has no frames")
    picks = [frames[round(i * (len(frames) - 1) / max(1, num_frames - 1))] for i in range(min(num_frames, len(frames)))]
    strip = torch.cat(picks, dim=1).numpy()
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    out_png.write_bytes(buffer.getvalue())


def _metric_table(groups: dict[str, GroupSummary]) -> str:
    arrows = {"higher": "&uarr;", "lower": "&darr;"}
    head = "".join(f"<th>{html.escape(s.title)} {arrows[s.better]}</th>" for s in METRICS)
    rows = []
    for name, group in groups.items():
        ok = group.num_cases - group.num_failed
        cells = "".join(f"<td>{html.escape(format_metric(s, group.metrics[s.key], ok))}</td>" for s in METRICS)
        label = html.escape(SPLIT_TITLES.get(name, name))
        rows.append(f"<tr><td>{label}</td>{cells}<td>{ok}/{group.num_cases}</td></tr>")
    return f"<div class=\"wide\"><table><tr><th>split</th>{head}<th>cases ok</th></tr>{''.join(rows)}</table></div>"


def _case_metrics(result: CaseResult) -> str:
    rows = []
    for spec in METRICS:
        metric = result.metrics.get(spec.key)
        if metric is None:
            continue
        if metric.value is None:
            cell = f'<td class="nc">not computed: {html.escape(metric.not_computed or "")}</td>'
        elif spec.key == "time_s":
            cell = f"<td>{format_seconds(metric.value)}</td>"
        else:
            cell = f"<td>{metric.value:.4g}</td>"
        rows.append(f"<tr><td>{html.escape(spec.title)}</td>{cell}</tr>")
    return "<table><tr><th>metric</th><th>value</th></tr>" + "".join(rows) + "</table>" if rows else ""


def _figure(out_dir: Path, relative: str | None, caption: str) -> str:
    if not relative or not (out_dir / relative).is_file():
        return ""
    url = png_data_url(out_dir / relative)
    text = html.escape(caption)
    return f'<figure><img alt="{text}" src="{url}"><figcaption>{text}</figcaption></figure>'


def _video(out_dir: Path, relative: str | None, max_mb: float) -> str:
    if not relative or not (out_dir / relative).is_file():
        return ""
    path = out_dir / relative
    if path.stat().st_size > max_mb * 2**20:
        return f"<p>turntable video: {html.escape(relative)} ({path.stat().st_size / 2**20:.1f} MB, not embedded)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><video controls loop muted playsinline preload="metadata" src="data:video/mp4;base64,{data}"></video>'
        "<figcaption>turntable (left: source, right: edited)</figcaption></figure>"
    )


def _case_section(result: CaseResult, out_dir: Path, max_video_mb: float) -> str:
    esc = html.escape
    details = result.details
    parts = [
        f'<section class="case {esc(result.status)}" id="case-{esc(result.case_id)}" '
        f'data-case-id="{esc(result.case_id)}" data-status="{esc(result.status)}">',
        f"<h2>{esc(result.case_id)}</h2>",
        f"<p><b>split</b>: {esc(result.split)} &middot; <b>instruction</b>: {esc(result.instruction)}</p>",
    ]
    captions = details.get("captions")
    if captions:
        parts.append(
            f"<p><b>source caption</b>: {esc(captions['source'])} &middot; "
            f"<b>target caption</b>: {esc(captions['target'])}</p>"
        )
    if details.get("eval_cameras"):
        parts.append(f"<p><b>evaluation views</b>: {esc(str(details['eval_cameras']))}</p>")
    if result.status != "ok":
        parts.append(f"<p><b>error</b>: {esc(result.error or '')}</p><pre>{esc(result.traceback or '')}</pre>")
    parts.append(_case_metrics(result))
    files = result.files
    parts.append(_figure(out_dir, files.get("eval_sheet"), "novel views: source (top) and edited (bottom)"))
    parts.append(_figure(out_dir, files.get("before_after"), "edited views: before and after the 2D edit"))
    parts.append(_figure(out_dir, files.get("edited_views"), "the method's edited views"))
    parts.append(_figure(out_dir, files.get("turntable_strip"), "turntable frames (left: source, right: edited)"))
    parts.append(_video(out_dir, files.get("turntable"), max_video_mb))
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def render_report(
    results: list[CaseResult],
    groups: dict[str, GroupSummary],
    *,
    out_dir: Path,
    title: str,
    method: str,
    judge_model: str | None,
    max_video_mb: float = 4.0,
) -> str:
    """The HTML text of report.html; `results[*].files` are resolved against `out_dir` and embedded."""
    esc = html.escape
    failed = [r.case_id for r in results if r.status != "ok"]
    body = [
        f"<h1>{esc(title)}</h1>",
        '<pre id="js-errors"></pre>',
        '<p id="status" data-ready="0">loading</p>',
        f"<p><b>method</b>: {esc(method)} &middot; <b>VIEScore judge</b>: {esc(judge_model or 'not computed')}"
        f" &middot; <b>cases</b>: {len(results)} ({len(failed)} failed)</p>",
        "<h2>Summary</h2>",
        _metric_table(groups),
        '<nav><b>cases</b>: ' + " ".join(
            f'<a href="#case-{esc(r.case_id)}">{esc(r.case_id)}</a>' for r in results
        ) + "</nav>",
    ]
    body += [_case_section(result, out_dir, max_video_mb) for result in results]
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{_STYLE}</style><script>{_ERROR_HOOK}</script></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_STATUS_SCRIPT}</script>\n</body></html>\n"
    )

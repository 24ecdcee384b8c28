"""`table.md`: the aggregate results in the layout of the paper's Table 1, then per split (Table S4) and extras.

Table 1 of the paper has one row per method and the columns VIEScore, CLIP-dir, Ph-Loss and average
time; our extra metrics follow in a second table. A value computed on fewer cases than the group has carries
`(n=k)`; a metric computed on no case shows `n/c` with the reasons listed under the table.
"""

from __future__ import annotations

from rl3dedit.eval.results import METRICS, GroupSummary, MetricSpec, MetricSummary

SPLIT_TITLES = {
    "overall": "all cases",
    "in_distribution": "in-distribution (novel views)",
    "unseen_instruction": "unseen instructions",
    "new_scene": "new scenes",
}


def format_seconds(seconds: float) -> str:
    """`42.0 s` below two minutes, `1.5 min` above (the paper reports minutes)."""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def format_metric(spec: MetricSpec, summary: MetricSummary, num_ok: int) -> str:
    """One table cell: the mean with a precision suited to the metric, `(n=k)` when partial, `n/c` when absent."""
    if summary.mean is None:
        return "n/c"
    if spec.key == "time_s":
        text = format_seconds(summary.mean)
    elif spec.key.startswith("viescore"):
        text = f"{summary.mean:.2f}"
    else:
        text = f"{summary.mean:.3f}"
    return text if summary.count >= num_ok else f"{text} (n={summary.count})"


def _header(specs: list[MetricSpec], first: str) -> list[str]:
    arrows = {"higher": "↑", "lower": "↓"}
    titles = [f"{spec.title} {arrows[spec.better]}" for spec in specs]
    return [f"| {first} | " + " | ".join(titles) + " | cases |", "|" + "---|" * (len(specs) + 2)]


def _row(label: str, specs: list[MetricSpec], group: GroupSummary) -> str:
    ok = group.num_cases - group.num_failed
    cells = [format_metric(spec, group.metrics[spec.key], ok) for spec in specs]
    cases = f"{ok}/{group.num_cases}" if group.num_failed else str(group.num_cases)
    return f"| {label} | " + " | ".join(cells) + f" | {cases} |"


def _notes(groups: dict[str, GroupSummary]) -> list[str]:
    overall = groups["overall"]
    lines = []
    for spec in METRICS:
        summary = overall.metrics[spec.key]
        if summary.not_computed:
            reasons = "; ".join(summary.reasons)
            lines.append(f"- {spec.title}: not computed on {summary.not_computed} case(s): {reasons}")
    if overall.stage_times_s:
        stages = ", ".join(f"{stage} {format_seconds(sec)}" for stage, sec in overall.stage_times_s.items())
        lines.append(f"- mean time per stage: {stages}")
    if overall.num_failed:
        lines.append(f"- {overall.num_failed} case(s) failed; see results.json for errors and tracebacks")
    return lines


def render_table(groups: dict[str, GroupSummary], *, method: str, title: str, judge_model: str | None) -> str:
    """Markdown for `table.md` from `aggregate()` output (`overall` first, then splits)."""
    main = [spec for spec in METRICS if spec.table1]
    extra = [spec for spec in METRICS if not spec.table1]
    lines = [f"# {title}", "", "## Table 1 layout (all cases)", ""]
    lines += _header(main, "method")
    lines.append(_row(method, main, groups["overall"]))
    lines += ["", "## Per split (Table S4 layout)", ""]
    lines += _header(main, "split")
    lines += [_row(SPLIT_TITLES.get(name, name), main, group) for name, group in groups.items()]
    lines += ["", "## Extra metrics", ""]
    lines += _header(extra, "split")
    lines += [_row(SPLIT_TITLES.get(name, name), extra, group) for name, group in groups.items()]
    lines += ["", "## Notes", ""]
    judge = judge_model or "none (not computed)"
    lines.append(f"- VIEScore judge: {judge}; metric definitions: docs/evaluation.md")
    lines += _notes(groups)
    lines += ["", "Metrics:", ""]
    lines += [f"- {spec.title}: {spec.description} ({spec.better} is better)" for spec in METRICS]
    return "\n".join(lines) + "\n"

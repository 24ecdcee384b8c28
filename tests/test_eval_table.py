"""table.md: the paper's Table 1 columns in order, per-split rows, partial counts and not-computed notes."""

from rl3dedit.eval.cases import SPLITS
from rl3dedit.eval.results import METRIC_KEYS, CaseResult, MetricValue, aggregate
from rl3dedit.eval.table import format_seconds, render_table


def _case(case_id, split, **values):
    metrics = {k: MetricValue(values[k]) if k in values else MetricValue.skipped("no judge endpoint")
               for k in METRIC_KEYS}
    return CaseResult(case_id, split, "x", "ok", metrics)


def test_table_layout_and_values():
    results = [
        _case("a", "in_distribution", clip_dir=0.147, ph_loss=0.076, time_s=90.0, clip_t=0.25),
        _case("b", "unseen_instruction", clip_dir=0.125, ph_loss=0.080, time_s=30.0),
    ]
    text = render_table(aggregate(results, SPLITS), method="RL3DEdit (tiny)", title="t", judge_model=None)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| method"))
    assert header == "| method | VIEScore ↑ | CLIP-dir ↑ | Ph-Loss ↓ | avg. time ↓ | cases |"
    row = lines[lines.index(header) + 2]
    assert row == "| RL3DEdit (tiny) | n/c | 0.136 | 0.078 | 60.0 s | 2 |"
    assert "| in-distribution (novel views) | n/c | 0.147 | 0.076 | 90.0 s | 1 |" in lines
    assert "| unseen instructions | n/c | 0.125 | 0.080 | 30.0 s | 1 |" in lines
    # CLIP-T was computed on one of two cases: the count is shown.
    assert any(line.startswith("| all cases |") and "0.250 (n=1)" in line for line in lines)
    assert "- VIEScore: not computed on 2 case(s): no judge endpoint" in lines
    assert "VIEScore judge: none (not computed)" in text


def test_failed_cases_are_counted():
    results = [_case("a", "new_scene", clip_dir=0.1), CaseResult("b", "new_scene", "x", "error", error="E: boom")]
    text = render_table(aggregate(results, SPLITS), method="m", title="t", judge_model="gpt-4.1")
    assert "| m | n/c | 0.100 | n/c | n/c | 1/2 |" in text
    assert "1 case(s) failed" in text and "VIEScore judge: gpt-4.1" in text


def test_format_seconds_switches_to_minutes():
    assert format_seconds(42.04) == "42.0 s" and format_seconds(90.0) == "90.0 s" and format_seconds(300) == "5.0 min"

"""Aggregation: means over computed cases only, counts and reasons per split; JSON round trip; atomic writes."""

import json

import pytest

from rl3dedit.eval.cases import SPLITS
from rl3dedit.eval.results import METRIC_KEYS, CaseResult, MetricValue, aggregate
from rl3dedit.files import write_json


def _case(case_id: str, split: str, **values) -> CaseResult:
    metrics = {}
    for key in METRIC_KEYS:
        value = values.get(key)
        metrics[key] = MetricValue(value) if value is not None else MetricValue.skipped("no judge endpoint")
    return CaseResult(case_id, split, "make it blue", "ok", metrics, {"timings_s": {"edit": values.get("time_s", 0.0)}})


def test_not_computed_metrics_stay_out_of_means():
    results = [
        _case("a", "in_distribution", clip_dir=0.2, viescore=6.0, time_s=10.0),
        _case("b", "in_distribution", clip_dir=0.1, time_s=30.0),
        _case("c", "new_scene", clip_dir=-0.3, viescore=2.0),
        CaseResult("d", "new_scene", "x", "error", error="RuntimeError: boom", traceback="Traceback ..."),
    ]
    groups = aggregate(results, SPLITS)
    assert list(groups) == ["overall", "in_distribution", "new_scene"]
    overall = groups["overall"]
    assert overall.num_cases == 4 and overall.num_failed == 1
    assert overall.metrics["clip_dir"].mean == pytest.approx(0.0) and overall.metrics["clip_dir"].count == 3
    assert overall.metrics["viescore"].mean == pytest.approx(4.0) and overall.metrics["viescore"].count == 2
    assert overall.metrics["viescore"].not_computed == 2
    assert overall.metrics["viescore"].reasons == ["case failed", "no judge endpoint"]
    assert overall.metrics["ph_loss"].mean is None and overall.metrics["ph_loss"].count == 0
    assert groups["in_distribution"].metrics["time_s"].mean == pytest.approx(20.0)
    assert groups["new_scene"].metrics["viescore"].mean == pytest.approx(2.0)
    assert groups["in_distribution"].stage_times_s == {"edit": pytest.approx(20.0)}


def test_metric_value_needs_a_reason_and_rejects_non_finite():
    with pytest.raises(ValueError, match="not_computed reason"):
        MetricValue(None)
    nan = MetricValue(float("nan"))
    assert nan.value is None and "non-finite" in nan.not_computed


def test_case_result_json_round_trip(tmp_path):
    result = _case("a", "unseen_instruction", clip_dir=0.25)
    result.details = {"per_view": [0.1, float("inf")]}
    path = tmp_path / "result.json"
    write_json(path, result.to_json())
    data = json.loads(path.read_text())
    assert data["details"]["per_view"] == [0.1, None]
    assert data["metrics"]["viescore"] == {"value": None, "not_computed": "no judge endpoint"}
    back = CaseResult.from_json(data)
    assert back.metrics["clip_dir"].value == 0.25 and back.status == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]

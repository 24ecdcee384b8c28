"""score_case: every metric key present, switched-off families explained, no judge means not computed."""

import pytest
import torch

from rl3dedit.config import load_config
from rl3dedit.eval.cases import EvalCase, HeldOutViews
from rl3dedit.eval.results import METRIC_KEYS
from rl3dedit.eval.scoring import CaseViews, MetricModels, load_metric_models, score_case
from rl3dedit.pipeline.source import SyntheticSource
from rl3dedit.scene import Cameras

CASE = EvalCase(
    id="c", split="new_scene", scene=SyntheticSource(), instruction="make it blue",
    source_caption="a red cube", target_caption="a blue cube", eval_views=HeldOutViews(kind="held_out"),
)


def _views(timings=None) -> CaseViews:
    g = torch.Generator().manual_seed(0)
    viewmats = torch.eye(4).repeat(3, 1, 1)
    viewmats[:, 0, 3] = torch.tensor([0.0, 0.1, 0.2])
    Ks = torch.tensor([[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]]).repeat(3, 1, 1)
    source = torch.rand(3, 3, 16, 16, generator=g)
    return CaseViews(Cameras(viewmats, Ks, 16, 16), source, source.flip(-1), torch.full((3, 1, 16, 16), 2.0), timings)


def test_without_models_every_metric_has_a_reason():
    config = load_config("tiny").override("eval.metrics", ["ph_loss_rendered_depth", "time"])
    models = load_metric_models(config, torch.device("cpu"), env={})
    assert models.clip is None and models.vggt is None and models.judge is None
    scores = score_case(CASE, _views(timings={"edit": 2.0, "refit": 1.0}), models, config)
    assert set(scores.metrics) == set(METRIC_KEYS)
    assert scores.metrics["clip_dir"].not_computed == "switched off in eval.metrics"
    assert scores.metrics["viescore"].not_computed == "switched off in eval.metrics"
    assert scores.metrics["time_s"].value == 3.0 and scores.details["timings_s"] == {"edit": 2.0, "refit": 1.0}
    assert scores.metrics["ph_loss_rendered_depth"].value > 0
    assert 0 < scores.details["ph_loss_rendered_depth_source_mean"] < 1
    no_time = score_case(CASE, _views(), models, config)
    assert no_time.metrics["time_s"].not_computed == "no timings recorded for this method"


def test_no_endpoint_means_viescore_not_computed():
    config = load_config("tiny").override("eval.metrics", ["clip", "viescore"])
    models = load_metric_models(config, torch.device("cpu"), env={})
    scores = score_case(CASE, _views(), models, config)
    assert scores.metrics["viescore"].value is None
    assert "OPENAI_API_KEY" in scores.metrics["viescore"].not_computed
    assert scores.details["viescore"]["judge_model"] is None
    assert -1 <= scores.metrics["clip_dir"].value <= 1 and scores.details["clip_model"] == "tiny"


def test_mismatched_renders_are_refused():
    config = load_config("tiny").override("eval.metrics", ["time"])
    views = _views()
    views.edited_views = views.edited_views[:2]
    with pytest.raises(ValueError, match="case 'c': source renders"):
        score_case(CASE, views, MetricModels(None, None, None, None), config)


@pytest.mark.parametrize("transform", ["raw", "log"])
def test_vggt_score_honours_the_confidence_transform(transform):
    config = load_config("tiny").override("eval.metrics", ["vggt"]).override("rewards.confidence_transform", transform)
    models = load_metric_models(config, torch.device("cpu"), env={})
    assert models.consistency.confidence_transform == transform
    scores = score_case(CASE, _views(), models, config)
    if transform == "raw":  # the raw VGGT confidence is >= 1; the default `inverse` keeps scores below 1
        assert scores.metrics["vggt_depth"].value >= 1

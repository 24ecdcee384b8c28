"""Best-of-N selection (issue 14): with a stand-in editor whose candidates differ in a known way, the most
consistent candidate is kept, the anchor term stops an unedited candidate from winning, and everything is recorded."""

from __future__ import annotations

import json

import pytest
import torch

from arc_rig import arc_rig
from rl3dedit.pipeline.candidates import AnchorCheck, candidate_seeds, select_best, write_candidates
from rl3dedit.rewards import AnchorReward, WarpReward
from rl3dedit.rewards.perturb import hue_shift, shift_one_view

SIZE, V = 64, 4
TINT = torch.tensor([1.0, 0.7, 0.5])[:, None, None]  # "the edit": every view warmed the same way


@pytest.fixture(scope="module")
def setup():
    return arc_rig(V, SIZE)


class StandInEditor:
    """Candidates by seed: 10 -> one view shifted 4 px, 11 -> consistent edit (every view tinted alike),
    12 -> every view recoloured independently, 13 -> the source views unchanged (perfectly consistent, no edit),
    14 -> the tinted edit with a little independent noise per view (a real edit is never perfectly consistent)."""

    def __init__(self, views: torch.Tensor):
        self.views, self.calls = views, []

    def __call__(self, seeds: list[int]):
        return [self.one(seed) for seed in seeds]

    def one(self, seed: int):
        self.calls.append(seed)
        g = torch.Generator().manual_seed(seed)
        edited = self.views * TINT
        out = {10: lambda: shift_one_view(edited, g, pixels=4), 11: lambda: edited,
               12: lambda: hue_shift(self.views, g), 13: lambda: self.views.clone(),
               14: lambda: (edited + 0.03 * torch.randn(edited.shape, generator=g)).clamp(0, 1)}[seed]()
        return out, [torch.cat(list(out), dim=2)]


class MeanAbs(torch.nn.Module):
    """A stand-in perceptual distance: mean absolute difference per image."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean(dim=(1, 2, 3))


def test_the_most_consistent_candidate_is_kept_and_all_are_recorded(setup, tmp_path):
    scene, cameras, views = setup
    editor = StandInEditor(views)
    seeds = candidate_seeds(10, 3)
    assert seeds == [10, 11, 12]
    selection = select_best(editor, seeds, cameras, WarpReward(scene=scene), reward_name="warp")
    assert editor.calls == seeds
    assert selection.best == 1 and selection.kept.seed == 11
    scores = [c.score for c in selection.candidates]
    assert scores[1] > max(scores[0], scores[2])
    record = json.loads(json.dumps(selection.to_json()))  # JSON-ready
    assert record["kept"] == 1 and record["kept_seed"] == 11 and "kept candidate #1 (seed 11)" in record["reason"]
    assert [c["seed"] for c in record["candidates"]] == seeds
    assert all(set(c["terms"]) == {"warp", "total"} and len(c["per_view"]) == V for c in record["candidates"])
    write_candidates(selection, tmp_path / "candidates")
    assert sorted(p.name for p in (tmp_path / "candidates").iterdir()) == [
        f"candidate_{i:02d}_grid.png" for i in range(3)]


def test_the_anchor_term_stops_an_unedited_candidate_from_winning(setup):
    scene, cameras, views = setup
    editor = StandInEditor(views)
    reward = WarpReward(scene=scene)
    plain = select_best(editor, [14, 13], cameras, reward, reward_name="warp")
    assert plain.kept.seed == 13  # no edit is the most consistent of all
    reference = views[0] * TINT[:, 0, 0][:, None, None]  # the single-view edit of view 0
    anchor = AnchorCheck(AnchorReward(MeanAbs(), lam=10.0), index=0, reference=reference, weight=1.0)
    anchored = select_best(editor, [14, 13], cameras, reward, reward_name="warp", anchor=anchor)
    assert anchored.kept.seed == 14
    kept = anchored.kept.terms
    assert kept["anchor"] > anchored.candidates[1].terms["anchor"]
    assert anchored.kept.score == pytest.approx(kept["total"] + kept["anchor"])
    assert "anchor r_a" in anchored.reason


@pytest.mark.slow  # three tiny edits, a refit and a turntable: ~30 s on the shared 2-core machine
def test_edit_job_keeps_the_best_of_three_and_records_all(tmp_path):
    from rl3dedit.config import load_config
    from rl3dedit.pipeline import run_edit
    from rl3dedit.synthetic import make_synthetic_capture

    config = load_config("tiny").override("recon.refit_iters", 5).override("editor.candidates", 3)
    # The weight-free warp check (the source scene's rendered depth) scores the candidates and the QA stage.
    config = config.override("rewards", config.rewards.model_dump() | {"view_reward": "warp",
                                                                       "weights": {"warp": 0.5, "anchor": 0.5}})
    scene, capture = make_synthetic_capture(num_views=12, size=64, seed=0)
    report = run_edit(config, instruction="make it blue", out_dir=tmp_path / "run", scene=scene,
                      cameras=capture.cameras, turntable_frames=2)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["candidates"]
    scores = [c["score"] for c in record["candidates"]]
    assert record["count"] == 3 and record["reward"] == "warp"
    assert record["kept"] == max(range(3), key=lambda i: scores[i])
    assert [c["seed"] for c in record["candidates"]] == [report.metrics["edit_seed"] - record["kept"] + i for i in range(3)]
    assert f"kept candidate #{record['kept']}" in record["reason"] and record["edit_s_per_candidate"] > 0
    for c in record["candidates"]:
        assert (tmp_path / "run" / c["grids"][0]).is_file()
    assert report.metrics["consistency"]["edited"]["total"] == pytest.approx(scores[record["kept"]], abs=1e-5)

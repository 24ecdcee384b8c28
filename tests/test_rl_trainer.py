"""The GRPO trainer: exact first ratio, gradient accumulation invariance, zero-variance groups, and learning."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from rl3dedit.config import load_config
from rl3dedit.editor import grid_prompt
from rl3dedit.rewards import RewardBreakdown
from rl3dedit.rl import (
    GRPOTrainer,
    PolicyBatch,
    PreparedDataset,
    accumulate_policy_gradients,
    build_editor,
    parse_manifest,
    prepare_dataset,
)


def small_config(**rl):
    """The tiny preset at 32-px views (a 96-px grid, 36 tokens) so the loop runs in about a second per update."""
    cfg = load_config("tiny")
    rl_updates = {"ema": False, "prepare_num_steps": 1, "checkpoint_every": 1000, "image_every": 1000, **rl}
    return cfg.model_copy(update={"views": cfg.views.model_copy(update={"view_size": 32}),
                                  "rl": cfg.rl.model_copy(update=rl_updates)})


ONE_SAMPLE = {"scenes": [{"name": "s", "synthetic": {"num_views": 12, "size": 32, "seed": 0},
                          "prompts": ["make it red"], "view_sets": [[0, 1, 2, 3, 4, 5, 6, 7, 8]]}]}


def redness(views, *, cameras, anchor_index, anchor_reference):
    """A learnable reward with the `CompositeReward.score` signature: mean red minus mean green/blue."""
    value = views[:, :, 0].mean(dim=(1, 2, 3)) - views[:, :, 1:].mean(dim=(1, 2, 3, 4))
    return RewardBreakdown(total=value, terms={"red": value})


def constant(views, *, cameras, anchor_index, anchor_reference):
    return RewardBreakdown(total=torch.ones(views.shape[0]), terms={})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    cfg = small_config()
    root = tmp_path_factory.mktemp("prepared")
    editor = build_editor(cfg, "cpu")
    prepare_dataset(cfg, parse_manifest(ONE_SAMPLE), root, editor=editor)
    return PreparedDataset(root)


def test_first_update_has_ratio_exactly_one_and_changes_lora(prepared, tmp_path):
    cfg = small_config(learning_rate=1e-2)
    editor = build_editor(cfg, "cpu")
    trainer = GRPOTrainer(cfg, editor, prepared, redness, tmp_path, Accelerator(cpu=True))
    before = {n: p.detach().clone() for n, p in trainer.named_params.items()}
    trainer.train(1)
    metrics = trainer.history[0]
    assert metrics["policy/ratio_min"] == 1.0 and metrics["policy/ratio_max"] == 1.0
    assert metrics["policy/clipfrac"] == 0.0 and metrics["policy/approx_kl"] == 0.0
    unchanged = [n for n, p in trainer.named_params.items() if "lora_B" in n and torch.equal(p, before[n])]
    assert not unchanged, f"LoRA B weights that did not change: {unchanged}"
    for key in ("reward/red", "reward/mean", "reward/std", "adv/mean", "adv/zero_std_frac", "time/rollout_s",
                "time/reward_s", "time/update_s", "policy/kl_ref"):
        assert key in metrics
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1


def test_zero_variance_groups_are_dropped_without_a_step(prepared, tmp_path):
    cfg = small_config(kl_coef=0.1)
    editor = build_editor(cfg, "cpu")
    trainer = GRPOTrainer(cfg, editor, prepared, constant, tmp_path, Accelerator(cpu=True))
    before = [p.detach().clone() for p in trainer.params]
    trainer.train(1)
    assert trainer.history[0]["adv/zero_std_frac"] == 1.0
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.params))


def test_two_micro_batches_of_one_equal_one_batch_of_two(prepared):
    cfg = small_config()
    editor = build_editor(cfg, "cpu")
    with torch.no_grad():  # a non-zero adapter so every LoRA weight gets a gradient
        gen = torch.Generator().manual_seed(0)
        for p in editor.trainable_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    sample = prepared[0]
    from rl3dedit.views import tile

    rollout = editor.rollout(tile(sample.source_views, 3, 3, "aligned"), grid_prompt(sample.prompt), group_size=2,
                             num_steps=4, guidance_scale=2.5, seeds=[3, 4], noise_level=0.8, window=(0, 2))
    adv = torch.tensor([1.3, -0.7])
    params = editor.trainable_parameters()

    def grads(batches):
        for p in params:
            p.grad = None
        accumulate_policy_gradients(editor, batches, clip_range=1e-4, adv_clip=5.0, kl_coef=0.05,
                                    num_terms=2 * rollout.num_recorded)
        return [p.grad.clone() for p in params]

    one = grads([PolicyBatch(rollout, [0, 1], adv)])
    two = grads([PolicyBatch(rollout, [0], adv[:1]), PolicyBatch(rollout, [1], adv[1:])])
    assert any(g.abs().max() > 0 for g in one)
    for a, b in zip(one, two):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_trainer_learns_a_simple_reward(prepared, tmp_path):
    """The exact trainer raises mean redness on held-out seeds by many standard errors (~20 s on 2 cores)."""
    from rl3dedit.views import split, tile

    # Flow-GRPO-Fast's random window over both legal starts: the high-noise step 0, which sets the colours, is trained
    # often (the tiny preset's progressive window sits at start 1 after the first update)
    cfg = small_config(learning_rate=0.1, group_size=8, window_strategy="random")
    editor = build_editor(cfg, "cpu")
    trainer = GRPOTrainer(cfg, editor, prepared, redness, tmp_path, Accelerator(cpu=True))
    sample = prepared[0]
    grid = tile(sample.source_views, 3, 3, "aligned")

    def held_out() -> torch.Tensor:
        rollout = editor.rollout(grid, grid_prompt(sample.prompt), group_size=16, num_steps=4, guidance_scale=2.5,
                                 seeds=list(range(10**6, 10**6 + 16)), noise_level=0.8, window=(0, 2))
        views = torch.stack([split(image, 3, 3, "aligned", (32, 32)) for image in rollout.images])
        return redness(views, cameras=None, anchor_index=0, anchor_reference=None).total

    before = held_out()
    trainer.train(30)
    after = held_out()
    stderr = ((before.var() + after.var()) / 16).sqrt()
    assert after.mean() - before.mean() > 5 * stderr, (before.mean(), after.mean(), stderr)


def test_policy_metrics_cover_every_inner_epoch_and_each_reward_term(prepared, tmp_path, monkeypatch):
    import rl3dedit.rl.trainer as trainer_module

    epochs: list[tuple[list[torch.Tensor], list[float]]] = []
    real = trainer_module.accumulate_policy_gradients

    def recording(*args, **kwargs):
        stats = kwargs["stats"]
        seen = len(stats.ratios), len(stats.clipfracs)
        out = real(*args, **kwargs)
        epochs.append(([r.clone() for r in stats.ratios[seen[0]:]], list(stats.clipfracs[seen[1]:])))
        return out

    monkeypatch.setattr(trainer_module, "accumulate_policy_gradients", recording)

    def two_terms(views, *, cameras, anchor_index, anchor_reference):
        red = views[:, :, 0].mean(dim=(1, 2, 3))
        green = views[:, :, 1].mean(dim=(1, 2, 3))
        return RewardBreakdown(total=red - green, terms={"red": red, "green": green})

    cfg = small_config(learning_rate=0.1, num_inner_epochs=2)
    trainer = GRPOTrainer(cfg, build_editor(cfg, "cpu"), prepared, two_terms, tmp_path, Accelerator(cpu=True))
    trainer.train(1)
    metrics = trainer.history[0]
    assert len(epochs) == 2
    ratios = torch.cat([r for ratios, _ in epochs for r in ratios])
    last = torch.cat(epochs[-1][0])
    assert metrics["policy/ratio_min"] == float(ratios.min()) and metrics["policy/ratio_max"] == float(ratios.max())
    assert metrics["policy/ratio_mean"] == pytest.approx(float(ratios.mean()), abs=1e-7)
    assert metrics["policy/ratio_mean"] != pytest.approx(float(last.mean()), abs=1e-7)  # the first epoch counts
    assert metrics["policy/num_ratios"] == 2 * cfg.rl.group_size * cfg.rl.window_size
    clipfracs = [c for _, fracs in epochs for c in fracs]
    assert epochs[0][1] == [0.0] * len(epochs[0][1]) and sum(epochs[1][1]) > 0  # epoch 1 on-policy, epoch 2 moved
    assert metrics["policy/clipfrac"] == pytest.approx(sum(clipfracs) / len(clipfracs))
    for name in ("red", "green"):
        assert f"reward/{name}" in metrics and metrics[f"reward/{name}_std"] > 0


def test_trainer_draws_the_anchor_with_draw_anchor_index(prepared, tmp_path, monkeypatch):
    import rl3dedit.rl.trainer as trainer_module

    calls, seen = [], []
    monkeypatch.setattr(trainer_module, "draw_anchor_index", lambda generator, num_views: calls.append(num_views) or 5)

    def spy(views, *, cameras, anchor_index, anchor_reference):
        seen.append(anchor_index)
        return redness(views, cameras=cameras, anchor_index=anchor_index, anchor_reference=anchor_reference)

    cfg = small_config()
    GRPOTrainer(cfg, build_editor(cfg, "cpu"), prepared, spy, tmp_path, Accelerator(cpu=True)).train(1)
    assert calls == [9] and seen == [5]


def test_unscorable_groups_are_skipped_then_the_run_stops_after_a_checkpoint(prepared, tmp_path, caplog):
    calls = []

    def flaky(views, *, cameras, anchor_index, anchor_reference):
        calls.append(len(calls))
        if len(calls) in (1, 3, 4):  # update 1 fails, update 2 scores, updates 3 and 4 fail
            raise RuntimeError("every candidate failed to score")
        return redness(views, cameras=cameras, anchor_index=anchor_index, anchor_reference=anchor_reference)

    cfg = small_config(max_consecutive_failed_groups=2)
    trainer = GRPOTrainer(cfg, build_editor(cfg, "cpu"), prepared, flaky, tmp_path, Accelerator(cpu=True))
    with caplog.at_level("WARNING"), pytest.raises(RuntimeError, match="2 consecutive groups could not be scored"):
        trainer.train(5)
    assert [m["groups/failed"] for m in trainer.history] == [1.0, 0.0, 1.0]
    assert "policy/loss" not in trainer.history[0] and "policy/loss" in trainer.history[1]
    assert "could not be scored and is skipped" in caplog.text
    assert (tmp_path / "checkpoints" / "update-000003").is_dir()


def test_paper_window_sweeps_every_start_once_and_stops_at_the_last():
    from rl3dedit.rl.trainer import window_schedule

    paper = load_config("paper")
    schedule = window_schedule(paper.rl, paper.seed)
    updates = 1319  # one epoch over the paper's samples, one group per update
    starts = [schedule.start(u) for u in range(updates)]
    assert starts[0] == 0 and all(b - a in (0, 1) for a, b in zip(starts, starts[1:]))  # monotone, one step
    assert sorted(set(starts)) == list(range(8)) and starts[-1] == 7  # 12 steps, window 4: starts 0..7
    trained = {step for u in range(updates) for step in schedule.steps(u)}
    assert trained == set(range(11))  # every step but the final sigma->0 one, incl. 9 and 10


class GaussianColourEditor:
    """A stand-in `TrainableEditor`: each member's grid is one colour sigmoid(x), x ~ N(w, 0.5²) (one recorded step).

    Nothing of `KontextGridEditor` is used, so the trainer is shown to need only the protocol.
    """

    def __init__(self) -> None:
        self.w = torch.nn.Parameter(torch.zeros(3))
        self.training = False

    def edit_views(self, views, instruction, *, num_steps, guidance_scale, seed):
        raise NotImplementedError

    def rollout(self, image, prompt, *, group_size, num_steps, guidance_scale, seeds, noise_level, window,
                height=None, width=None, batch_size=None):
        from rl3dedit.editor import Condition, Rollout

        x = torch.stack([torch.randn(3, generator=torch.Generator().manual_seed(s)) for s in seeds]) * 0.5
        x = x + self.w.detach()
        h, w = int(image.shape[-2]), int(image.shape[-1])
        images = torch.sigmoid(x)[:, :, None, None].expand(-1, 3, h, w).contiguous()
        empty = torch.zeros(1, 1, 1)
        condition = Condition(empty, empty[0], empty[0], empty, empty[0], empty[0], guidance_scale, h, w)
        return Rollout(
            images=images, latents=torch.stack([x, x], dim=1)[:, :, None, :], final_latents=x[:, None, :],
            log_probs=torch.distributions.Normal(self.w.detach(), 0.5).log_prob(x).mean(-1, keepdim=True),
            sigmas=torch.tensor([[0.8, 0.6]]), timesteps=torch.tensor([800.0]), step_indices=[window[0]],
            condition=condition, noise_level=noise_level, seeds=list(seeds), num_steps=num_steps,
            batch_size=batch_size or group_size)

    def log_prob(self, rollout, k, *, members=None, use_reference=False):
        from rl3dedit.editor import StepLogProb

        sub = rollout if members is None else rollout.select(members)
        x = sub.latents[:, k + 1, 0]
        mean = torch.zeros(3) if use_reference else self.w
        column = torch.ones(x.shape[0], 1, 1)
        return StepLogProb(torch.distributions.Normal(mean, 0.5).log_prob(x).mean(-1),
                           mean.expand(x.shape[0], 1, 3), 0.5 * column, 0.8 * column, 0.6 * column)

    def named_trainable_parameters(self):
        return {"w": self.w}

    def save_lora(self, folder):
        raise NotImplementedError

    def train(self) -> None:
        self.training = True

    def eval(self) -> None:
        self.training = False


def test_trainer_needs_only_the_trainable_editor_protocol(prepared, tmp_path):
    from rl3dedit.editor import TrainableEditor

    editor = GaussianColourEditor()
    assert isinstance(editor, TrainableEditor)
    cfg = small_config(learning_rate=0.05, group_size=8, window_size=1, kl_coef=0.01)
    trainer = GRPOTrainer(cfg, editor, prepared, redness, tmp_path, Accelerator(cpu=True))
    trainer.train(20)
    first = trainer.history[0]
    assert first["policy/ratio_min"] == 1.0 and first["policy/ratio_max"] == 1.0
    assert editor.w[0] > 0.1 and editor.w[0] > editor.w[1] and editor.w[0] > editor.w[2]  # it learned "red"


def test_resume_drops_metrics_lines_of_updates_it_will_redo(tmp_path):
    """A run killed after logging updates 1-3 but before checkpoint 2 resumes at update 0 or 2; the lines of updates
    it redoes (and a torn last line) must go, or metrics.jsonl would list an update twice (issue 17 item 11)."""
    import json

    from rl3dedit.rl.trainer import trim_metrics

    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"update": u, "reward/mean": 0.1 * u}) for u in (1, 2, 3)]
    path.write_text("\n".join(lines) + '\n{"update": 4, "rew')
    trim_metrics(path, 2)
    assert [json.loads(line)["update"] for line in path.read_text().splitlines()] == [1, 2]
    trim_metrics(path, 0)  # killed before the first checkpoint: everything is redone
    assert path.read_text() == ""
    trim_metrics(tmp_path / "absent.jsonl", 3)
    assert not (tmp_path / "absent.jsonl").exists()

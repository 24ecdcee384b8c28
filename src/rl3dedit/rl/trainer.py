"""The GRPO trainer of the grid editor (the paper's GRPO stage; Flow-GRPO, https://arxiv.org/abs/2505.05470).

`GRPOTrainer.train` reads top to bottom:

    for each update:
        conditions   <- next `samples_per_update` prepared samples (order seeded by (seed, epoch))
        window       <- WindowSchedule.start(update)                 (MixGRPO window of `window_size` SDE steps)
        groups       <- rollout G members per condition (this process: its K-repeat share), split into views
        rewards      <- reward_fn(views, cameras, anchor_index, anchor_reference), gathered over processes; a group
                        that cannot be scored is skipped (`rl.max_consecutive_failed_groups` in a row stop the run)
        advantages   <- group_advantages(rewards, group ids); zero-variance groups dropped
        policy step  <- per inner epoch: for each (member chunk, window step) recompute log-probs, PPO-clip loss
                        (+ kl_coef · KL to the LoRA-disabled model), backward; all-reduce, clip, AdamW, LR step, EMA
        log (policy stats over every inner epoch, each reward term's mean and std), maybe checkpoint

Precision: rollouts, log-prob recomputation and the KL reference pass all run in one autocast context (bf16 when
`rl.mixed_precision` is `bf16`, on GPU and CPU alike), as Flow-GRPO samples and trains in one precision; so on
unchanged weights the first update's ratio is exactly 1 in any precision.

Distribution: every process rolls out the same conditions with its own share of members (distinct seeds); rewards
are gathered before normalisation; gradients of the (small) LoRA parameters are averaged with `accelerator.reduce`
after the accumulation (no DDP wrapper, so the editor keeps calling the bare peft transformer, and `disable_adapters`
for the KL reference works unchanged). Seeds: member m of condition j at update u uses
derive_seed(seed, "member", u, j, m); the anchor index uses derive_seed(seed, "anchor", u, j).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rl3dedit.editor import Rollout, TrainableEditor, WindowSchedule, grid_prompt
from rl3dedit.files import dumps_json, write_text
from rl3dedit.progress import Progress
from rl3dedit.rewards import draw_anchor_index
from rl3dedit.rl.checkpoint import CheckpointState, latest_checkpoint, load_checkpoint, save_checkpoint
from rl3dedit.rl.dataset import PreparedDataset, PreparedSample, member_share, sample_at
from rl3dedit.rl.ema import EMA, EMAState
from rl3dedit.rl.grpo import approx_kl, clip_fraction, clipped_surrogate, group_advantages, kl_penalty
from rl3dedit.rl.seeding import derive_seed

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig
    from rl3dedit.rl.config import RLConfig

logger = logging.getLogger(__name__)

RewardFn = Callable[..., object]
"""`reward_fn(views (G, V, 3, H, W), *, cameras, anchor_index, anchor_reference (3, H, W)) -> RewardBreakdown`,
e.g. `CompositeReward.score`; anything returning an object with `total` (G,) and `terms` {name: (G,)}."""
@dataclass
class GroupRollout:
    """One condition's rollouts on this process. views: (g, V, 3, H, W); rewards: (g,) local; terms: name -> (g,)."""

    sample: PreparedSample
    group: int
    rollout: Rollout
    views: Tensor
    anchor_index: int
    rewards: Tensor | None = None
    terms: dict[str, Tensor] = field(default_factory=dict)
    failed: bool = False
    """True when scoring raised on any process (the group is then left out of the update)."""
    error: Exception | None = None
    """What scoring raised on this process."""


@dataclass
class PolicyBatch:
    """A micro-batch of the policy update: `members` of `rollout` (local indices), their advantages (len(members),)."""

    rollout: Rollout
    members: list[int]
    advantages: Tensor


@dataclass
class PolicyStats:
    """Diagnostics over the micro-batches of one update (every inner epoch, as CleanRL's PPO reports them)."""

    ratios: list[Tensor] = field(default_factory=list)
    clipfracs: list[float] = field(default_factory=list)
    approx_kls: list[float] = field(default_factory=list)
    kl_refs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    """One per accumulation (inner epoch): the mean loss of its terms."""
    grad_norms: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        ratios = torch.cat(self.ratios)
        return {
            "policy/loss": _mean(self.losses), "policy/ratio_mean": float(ratios.mean()),
            "policy/ratio_min": float(ratios.min()), "policy/ratio_max": float(ratios.max()),
            "policy/num_ratios": float(ratios.numel()), "policy/clipfrac": _mean(self.clipfracs),
            "policy/approx_kl": _mean(self.approx_kls), "policy/kl_ref": _mean(self.kl_refs),
            "policy/grad_norm": _mean(self.grad_norms),
        }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class TrainResult:
    """run_dir: the run folder; updates: updates done; history: per-update metrics; export_dir: exported adapter."""

    run_dir: Path
    updates: int
    history: list[dict[str, float]]
    export_dir: Path | None


def accumulate_policy_gradients(editor: TrainableEditor, batches: list[PolicyBatch], *, clip_range: float,
                                adv_clip: float, kl_coef: float, num_terms: int, kl_form: str = "flow-grpo",
                                backward: Callable[[Tensor], None] = Tensor.backward,
                                autocast=nullcontext, stats: PolicyStats | None = None) -> PolicyStats:
    """Backpropagate the mean GRPO loss over every (member, window step) of `batches` (the paper's objective).

    Each micro-batch (batch, step k) contributes sum(loss terms) / num_terms, so the accumulated gradient is the
    gradient of the mean over all `num_terms` terms whatever the micro-batching (tested: 2 x 1 == 1 x 2).
    Recorded step k's log-prob comes from `editor.log_prob` (the rollout's own velocity code path), under
    `autocast`, which must be the context the rollout ran in. Diagnostics are appended to `stats` when given.
    """
    stats = PolicyStats() if stats is None else stats
    total = 0.0
    for batch in batches:
        old = batch.rollout.log_probs[batch.members]  # (b, K)
        for k in range(batch.rollout.num_recorded):
            with autocast():
                step = editor.log_prob(batch.rollout, k, members=batch.members)
            terms = clipped_surrogate(step.log_prob, old[:, k], batch.advantages, clip_range, adv_clip)
            if kl_coef > 0:
                with autocast():
                    ref = editor.log_prob(batch.rollout, k, members=batch.members, use_reference=True)
                kl = kl_penalty(step.mean, ref.mean, step.std, step.std_dev_t, form=kl_form)
                terms = terms + kl_coef * kl
                stats.kl_refs.append(float(kl.detach().mean()))
            loss = terms.sum() / num_terms
            backward(loss)
            total += float(loss.detach())
            stats.ratios.append(torch.exp(step.log_prob.detach() - old[:, k]))
            stats.clipfracs.append(float(clip_fraction(step.log_prob, old[:, k], clip_range)))
            stats.approx_kls.append(float(approx_kl(step.log_prob, old[:, k])))
    stats.losses.append(total)
    return stats


def window_schedule(rl: RLConfig, seed: int) -> WindowSchedule:
    """The run's SDE window schedule from the `rl:` settings (one default last start for both strategies)."""
    return WindowSchedule(rl.num_steps, rl.window_size, rl.window_strategy, rl.window_min_start, rl.window_max_start,
                          rl.window_iters_per_shift, seed, stride=rl.window_stride, roll_back=rl.window_roll_back)


class GRPOTrainer:
    """GRPO with a MixGRPO window on a trainable editor (e.g. a `KontextGridEditor` carrying a LoRA).

    Args:
        config: the run config (`rl`, `views`, `seed` are used here).
        editor: the policy (`TrainableEditor`); `editor.named_trainable_parameters()` are optimised.
        dataset: prepared conditions (`rl.prepare`).
        reward_fn: see `RewardFn`.
        run_dir: where checkpoints, metrics.jsonl and TensorBoard logs go.
        accelerator: an `accelerate.Accelerator` (one is made when None).
    """

    def __init__(self, config: RunConfig, editor: TrainableEditor, dataset: PreparedDataset, reward_fn: RewardFn,
                 run_dir: str | Path, accelerator=None) -> None:
        from accelerate import Accelerator

        rl = config.rl
        self.config, self.rl, self.editor, self.dataset, self.reward_fn = config, rl, editor, dataset, reward_fn
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator or Accelerator(cpu=True)
        self.members = member_share(rl.group_size, self.accelerator.num_processes, self.accelerator.process_index)
        self.window = window_schedule(rl, config.seed)
        # one precision context for rollouts and updates, so the first ratio is exactly 1 in bf16 too
        acc = self.accelerator
        self.autocast = acc.autocast if acc.mixed_precision != "no" else nullcontext
        self.named_params = editor.named_trainable_parameters()
        if not self.named_params:
            raise ValueError("the editor has no trainable parameters; call editor.add_lora(...) first")
        self.params = list(self.named_params.values())
        self.optimizer = torch.optim.AdamW(self.params, lr=rl.learning_rate, betas=(rl.adam_beta1, rl.adam_beta2),
                                           eps=rl.adam_eps, weight_decay=rl.weight_decay)
        warmup = rl.lr_warmup_updates
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda n: min(1.0, (n + 1) / warmup) if warmup else 1.0)
        self.ema_settings = EMA(rl.ema_decay, rl.ema_interval)
        self.ema: EMAState | None = self.ema_settings.init(self.params) if rl.ema else None
        self.update = 0
        self.samples_seen = 0
        self.history: list[dict[str, float]] = []
        self.consecutive_failed_groups = 0

    # ----------------------------------------------------------------------------------------------- the loop
    @property
    def total_updates(self) -> int:
        per_epoch = max(1, len(self.dataset) // self.rl.samples_per_update)
        total = per_epoch * self.rl.num_epochs
        return min(total, self.rl.max_updates) if self.rl.max_updates else total

    def train(self, max_updates: int | None = None, progress: Progress | None = None) -> TrainResult:
        """Run updates until `max_updates` (default `total_updates`), checkpointing every `rl.checkpoint_every`."""
        total = max_updates if max_updates is not None else self.total_updates
        start_time = time.perf_counter()
        start_update = self.update
        while self.update < total:
            timings: dict[str, float] = {}
            conditions = self._next_conditions()
            window_start = self.window.start(self.update)
            groups = [self._rollout_group(s, j, window_start, timings) for j, s in enumerate(conditions)]
            with _timed(timings, "reward"):
                self._score(groups)
            scored = [g for g in groups if not g.failed]
            metrics = {"groups/failed": float(len(groups) - len(scored))}
            if scored:
                advantages, kept, reward_metrics = self._advantages(scored)
                metrics.update(reward_metrics)
                with _timed(timings, "update"):
                    metrics.update(self._policy_update(scored, advantages, kept))
            else:
                logger.warning("update %d: no group could be scored; no gradient step", self.update)
            metrics.update({f"time/{k}_s": v for k, v in timings.items()})
            metrics["window/start"] = float(window_start)
            self._after_update(metrics, groups)
            if progress is not None:
                progress("update", self.update, total, metrics)
            elapsed = time.perf_counter() - start_time
            eta = elapsed / (self.update - start_update) * (total - self.update)
            logger.info("update %d/%d  reward %.4f ± %.4f  clipfrac %.3f  %.1fs/update  ETA %.0fs", self.update,
                        total, metrics.get("reward/mean", math.nan), metrics.get("reward/std", math.nan),
                        metrics.get("policy/clipfrac", 0.0),
                        sum(timings.values()), eta)
        self.accelerator.wait_for_everyone()
        return TrainResult(self.run_dir, self.update, self.history, None)

    # ------------------------------------------------------------------------------------------------ phases
    def _next_conditions(self) -> list[PreparedSample]:
        samples = []
        for _ in range(self.rl.samples_per_update):
            _, index = sample_at(self.samples_seen, len(self.dataset), self.config.seed)
            samples.append(self.dataset[index])
            self.samples_seen += 1
        return samples

    def _rollout_group(self, sample: PreparedSample, group: int, window_start: int,
                       timings: dict[str, float]) -> GroupRollout:
        """G/num_processes SDE rollouts of one condition (no grad), decoded and split back into views."""
        from rl3dedit.views import split, tile

        vc, rl = self.config.views, self.rl
        source_grid = tile(sample.source_views, vc.rows, vc.cols, vc.layout).clamp(0, 1)
        seeds = [derive_seed(self.config.seed, "member", self.update, group, m) for m in self.members]
        with _timed(timings, "rollout"), self.autocast():
            rollout = self.editor.rollout(
                source_grid, grid_prompt(sample.prompt, vc.rows, vc.cols), group_size=len(seeds),
                num_steps=rl.num_steps, guidance_scale=rl.guidance_scale, seeds=seeds, noise_level=rl.noise_level,
                window=(window_start, rl.window_size), height=int(source_grid.shape[-2]),
                width=int(source_grid.shape[-1]), batch_size=rl.rollout_batch_size,
            )
        with _timed(timings, "split"):
            view_hw = tuple(sample.source_views.shape[-2:])
            views = torch.stack([split(image.float().cpu(), vc.rows, vc.cols, vc.layout, view_hw)
                                 for image in rollout.images])
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, "anchor", self.update, group))
        anchor_index = draw_anchor_index(generator, int(views.shape[1]))
        return GroupRollout(sample, group, rollout, views, anchor_index)

    def _score(self, groups: list[GroupRollout]) -> None:
        """Rewards of every group; a group whose scoring raises (on any process) is marked failed and skipped.

        After `rl.max_consecutive_failed_groups` failed groups in a row, a checkpoint is written and the run stops.
        """
        failed = []
        for g in groups:
            try:
                breakdown = self.reward_fn(g.views, cameras=g.sample.cameras, anchor_index=g.anchor_index,
                                           anchor_reference=g.sample.anchors[g.anchor_index])
                g.rewards = breakdown.total.detach().float().cpu()
                g.terms = {k: v.detach().float().cpu() for k, v in breakdown.terms.items()}
                failed.append(False)
            except Exception as exc:  # one unscorable group must not end a long run; repeated ones do (below)
                logger.warning("update %d: group %d (sample %s) could not be scored and is skipped: %s: %s",
                               self.update, g.group, g.sample.id, type(exc).__name__, exc)
                g.rewards, g.terms, g.error = torch.zeros(len(self.members)), {}, exc
                failed.append(True)
        flags = torch.tensor(failed, dtype=torch.float32)
        if self.accelerator.num_processes > 1:  # every process must skip the same groups
            flags = self.accelerator.gather(flags.to(self.accelerator.device)).cpu().reshape(-1, len(groups)).amax(0)
        for g, flag in zip(groups, flags.tolist()):
            g.failed = bool(flag)
            self.consecutive_failed_groups = self.consecutive_failed_groups + 1 if g.failed else 0
            if self.consecutive_failed_groups >= self.rl.max_consecutive_failed_groups:
                path = self.save_checkpoint()
                cause = next((h.error for h in reversed(groups) if h.error is not None), None)
                raise RuntimeError(
                    f"{self.consecutive_failed_groups} consecutive groups could not be scored (rl."
                    f"max_consecutive_failed_groups={self.rl.max_consecutive_failed_groups}); the last was sample "
                    f"{g.sample.id} at update {self.update}. Checkpoint written to {path or self.run_dir}; fix the "
                    "reward (see the warnings above) and continue with --resume") from cause

    def _gather(self, values: Tensor) -> Tensor:
        """(g,) local values -> (G,) in member order (processes hold consecutive member blocks)."""
        if self.accelerator.num_processes == 1:
            return values
        return self.accelerator.gather(values.to(self.accelerator.device)).cpu()

    def _advantages(self, groups: list[GroupRollout]) -> tuple[list[Tensor], list[bool], dict[str, float]]:
        """Local advantages per group, whether each group is kept (non-zero reward variance), and metrics."""
        rewards = torch.cat([self._gather(g.rewards) for g in groups])
        ids = torch.cat([torch.full((self.rl.group_size,), g.group) for g in groups])
        result = group_advantages(rewards, ids, std=self.rl.adv_std, eps=self.rl.adv_eps)
        share = torch.as_tensor(self.members)
        local = [result.advantages[ids == g.group][share] for g in groups]
        metrics = {"reward/mean": float(rewards.mean()), "reward/std": float(rewards.std(unbiased=False)),
                   "adv/mean": float(result.advantages.mean()), "adv/zero_std_frac": result.zero_std_fraction}
        for name in groups[0].terms:
            values = torch.cat([self._gather(g.terms[name]) for g in groups])
            metrics[f"reward/{name}"] = float(values.mean())
            metrics[f"reward/{name}_std"] = float(values.std(unbiased=False))
        kept = [not bool(result.zero_std_mask[ids == g.group].all()) for g in groups]
        return local, kept, metrics

    def _policy_update(self, groups: list[GroupRollout], advantages: list[Tensor], kept: list[bool]
                       ) -> dict[str, float]:
        rl = self.rl
        batches = [PolicyBatch(g.rollout, chunk, adv[chunk])
                   for g, adv, keep in zip(groups, advantages, kept) if keep
                   for chunk in g.rollout.member_chunks()]
        metrics: dict[str, float] = {"lr": float(self.scheduler.get_last_lr()[0])}
        if not batches:
            logger.info("update %d: every group had zero reward variance; no gradient step", self.update)
            return metrics
        num_terms = sum(len(b.members) for b in batches) * rl.window_size
        stats = PolicyStats()
        for _ in range(rl.num_inner_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            self.editor.train()
            accumulate_policy_gradients(self.editor, batches, clip_range=rl.clip_range, adv_clip=rl.adv_clip,
                                        kl_coef=rl.kl_coef, num_terms=num_terms, kl_form=rl.kl_form,
                                        autocast=self.autocast, stats=stats)
            self.editor.eval()
            if self.accelerator.num_processes > 1:
                for p in self.params:
                    grad = p.grad if p.grad is not None else torch.zeros_like(p)
                    p.grad = self.accelerator.reduce(grad, reduction="mean")
            stats.grad_norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, rl.max_grad_norm)))
            self.optimizer.step()
            self.scheduler.step()
        metrics.update(stats.metrics())
        return metrics

    def _after_update(self, metrics: dict[str, float], groups: list[GroupRollout]) -> None:
        """EMA, metrics (TensorBoard + metrics.jsonl), sample grids, checkpoint; then advance the update count."""
        if self.ema is not None:
            self.ema_settings.update(self.ema, self.params, self.update)
        self.update += 1
        self.history.append(metrics)
        acc = self.accelerator
        if self.update % self.rl.log_every == 0:
            acc.log(metrics, step=self.update)
        if acc.is_main_process:
            with (self.run_dir / "metrics.jsonl").open("a") as f:
                f.write(dumps_json({"update": self.update, **metrics}) + "\n")
            if self.update % self.rl.image_every == 0:
                self._log_images(groups[0])
        if self.update % self.rl.checkpoint_every == 0:
            self.save_checkpoint()

    def _log_images(self, group: GroupRollout) -> None:
        """A few decoded grids of the first condition (TensorBoard's `add_images`; skipped without a tracker)."""
        writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
        if not hasattr(writer, "add_images"):
            return
        images = group.rollout.images[: min(4, group.rollout.group_size)].float().clamp(0, 1).cpu()
        writer.add_images("samples/grids", images, global_step=self.update)

    # ------------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        self.accelerator.wait_for_everyone()
        path = None
        if self.accelerator.is_main_process:
            path = save_checkpoint(
                self.run_dir, state=CheckpointState(self.update, self.samples_seen, {"window": self.window.strategy}),
                named_params=self.named_params, optimizer=self.optimizer, scheduler=self.scheduler, ema=self.ema,
                config=self.config, editor=self.editor, keep=self.rl.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return path

    def resume(self) -> bool:
        """Load the newest checkpoint of `run_dir` if there is one; returns whether it did. metrics.jsonl lines of
        updates after it (logged before a kill, about to be redone) are dropped, so no update appears twice."""
        path = latest_checkpoint(self.run_dir)
        if path is not None:
            state = load_checkpoint(path, named_params=self.named_params, optimizer=self.optimizer,
                                    scheduler=self.scheduler, ema=self.ema)
            self.update, self.samples_seen = state.update, state.samples_seen
        if self.accelerator.is_main_process:
            trim_metrics(self.run_dir / "metrics.jsonl", self.update)
        if path is None:
            logger.info("no checkpoint in %s; starting from scratch", self.run_dir)
            return False
        logger.info("resumed from %s (update %d, %d samples seen)", path, self.update, self.samples_seen)
        return True


def trim_metrics(path: Path, last_update: int) -> None:
    """Keep only the metrics.jsonl lines of updates <= `last_update` (a torn last line is dropped too)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            if int(json.loads(line)["update"]) <= last_update:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    if len(kept) != len(lines):
        write_text(path, "".join(line + "\n" for line in kept))


class _timed:
    """Add the block's wall time to timings[name]."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.start

"""rl3dedit.rl: GRPO training of the grid editor (the paper's GRPO stage): manifest and prepared data, GRPO math, trainer,
checkpoints, EMA, export.

Names are imported on first use (`rl3dedit.lazy`), so configs and the CLI load without diffusers or transformers.
"""

from rl3dedit.lazy import lazy_exports

_EXPORTS = {
    "CheckpointState": "rl3dedit.rl.checkpoint",
    "EMA": "rl3dedit.rl.ema",
    "EMAState": "rl3dedit.rl.ema",
    "GRPOTrainer": "rl3dedit.rl.trainer",
    "GroupAdvantages": "rl3dedit.rl.grpo",
    "Manifest": "rl3dedit.rl.data",
    "PolicyBatch": "rl3dedit.rl.trainer",
    "PolicyStats": "rl3dedit.rl.trainer",
    "PrepareReport": "rl3dedit.rl.prepare",
    "PreparedDataset": "rl3dedit.rl.dataset",
    "PreparedSample": "rl3dedit.rl.dataset",
    "RLConfig": "rl3dedit.rl.config",
    "RewardFn": "rl3dedit.rl.trainer",
    "SampleSpec": "rl3dedit.rl.data",
    "TrainResult": "rl3dedit.rl.trainer",
    "accumulate_policy_gradients": "rl3dedit.rl.trainer",
    "approx_kl": "rl3dedit.rl.grpo",
    "build_accelerator": "rl3dedit.rl.run",
    "build_editor": "rl3dedit.rl.run",
    "builtin_manifest_path": "rl3dedit.rl.data",
    "clip_fraction": "rl3dedit.rl.grpo",
    "clipped_surrogate": "rl3dedit.rl.grpo",
    "derive_seed": "rl3dedit.rl.seeding",
    "epoch_order": "rl3dedit.rl.dataset",
    "export_adapter": "rl3dedit.rl.run",
    "group_advantages": "rl3dedit.rl.grpo",
    "kl_penalty": "rl3dedit.rl.grpo",
    "latest_checkpoint": "rl3dedit.rl.checkpoint",
    "list_checkpoints": "rl3dedit.rl.checkpoint",
    "load_checkpoint": "rl3dedit.rl.checkpoint",
    "load_manifest": "rl3dedit.rl.data",
    "member_share": "rl3dedit.rl.dataset",
    "parse_manifest": "rl3dedit.rl.data",
    "prepare_dataset": "rl3dedit.rl.prepare",
    "run_training": "rl3dedit.rl.run",
    "sample_at": "rl3dedit.rl.dataset",
    "sample_specs": "rl3dedit.rl.data",
    "save_checkpoint": "rl3dedit.rl.checkpoint",
    "swapped_in": "rl3dedit.rl.ema",
}

# The public API (20 names). Helpers and internals stay importable from the package but are not part of it.
__all__ = [
    "GRPOTrainer",
    "Manifest",
    "PrepareReport",
    "PreparedDataset",
    "PreparedSample",
    "RLConfig",
    "SampleSpec",
    "TrainResult",
    "build_editor",
    "builtin_manifest_path",
    "clipped_surrogate",
    "export_adapter",
    "group_advantages",
    "load_checkpoint",
    "load_manifest",
    "parse_manifest",
    "prepare_dataset",
    "run_training",
    "sample_specs",
    "save_checkpoint",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""rl3dedit.rl: GRPO training of the grid editor (paper.md §5): manifest and prepared data, GRPO math, trainer,
checkpoints, EMA, export."""

from rl3dedit.rl.checkpoint import CheckpointState, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from rl3dedit.rl.config import RLConfig
from rl3dedit.rl.data import Manifest, SampleSpec, builtin_manifest_path, load_manifest, parse_manifest, sample_specs
from rl3dedit.rl.dataset import PreparedDataset, PreparedSample, epoch_order, member_share, sample_at
from rl3dedit.rl.ema import EMA, EMAState, swapped_in
from rl3dedit.rl.grpo import (
    GroupAdvantages,
    approx_kl,
    clip_fraction,
    clipped_surrogate,
    group_advantages,
    kl_penalty,
)
from rl3dedit.rl.prepare import PrepareReport, prepare_dataset
from rl3dedit.rl.run import build_accelerator, build_editor, export_adapter, run_training
from rl3dedit.rl.seeding import derive_seed
from rl3dedit.rl.trainer import (
    GRPOTrainer,
    PolicyBatch,
    PolicyStats,
    RewardFn,
    TrainResult,
    accumulate_policy_gradients,
)

__all__ = [
    "EMA",
    "CheckpointState",
    "EMAState",
    "GRPOTrainer",
    "GroupAdvantages",
    "Manifest",
    "PolicyBatch",
    "PolicyStats",
    "PrepareReport",
    "PreparedDataset",
    "PreparedSample",
    "RLConfig",
    "RewardFn",
    "SampleSpec",
    "TrainResult",
    "accumulate_policy_gradients",
    "approx_kl",
    "build_accelerator",
    "build_editor",
    "builtin_manifest_path",
    "clip_fraction",
    "clipped_surrogate",
    "derive_seed",
    "epoch_order",
    "export_adapter",
    "group_advantages",
    "kl_penalty",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_manifest",
    "member_share",
    "parse_manifest",
    "prepare_dataset",
    "run_training",
    "sample_at",
    "sample_specs",
    "save_checkpoint",
    "swapped_in",
]

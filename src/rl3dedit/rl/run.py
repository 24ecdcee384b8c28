"""A whole training run: run folder, data (prepared on the fly when needed), editor + LoRA, reward, trainer, export.

Run folder layout:
    config.yaml         resolved config (+ run.json: versions, seeds, processes)
    data/               the prepared built-in/--manifest data when no prepared folder was given
    checkpoints/        `rl.checkpoint`; `--resume` continues from the newest
    tensorboard/        accelerate's TensorBoard tracker (scalars per update, sample grids)
    metrics.jsonl       one JSON line per update (main process)
    export/lora/        final adapter in diffusers/peft format (EMA weights when `rl.ema`); `EditorConfig.lora`
    export/transformer.safetensors   optional merged single-file transformer; `EditorConfig.transformer_file`
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rl3dedit.files import claimed_dir, write_json
from rl3dedit.progress import Progress
from rl3dedit.provenance import provenance
from rl3dedit.rl.data import builtin_manifest_path, load_manifest
from rl3dedit.rl.dataset import PreparedDataset
from rl3dedit.rl.ema import swapped_in
from rl3dedit.rl.prepare import INDEX_NAME, base_editor_config, prepare_dataset
from rl3dedit.rl.trainer import GRPOTrainer, RewardFn, TrainResult

if TYPE_CHECKING:
    from rl3dedit.config import RunConfig

logger = logging.getLogger(__name__)


def build_accelerator(config: RunConfig, run_dir: Path):
    """An `accelerate.Accelerator` with TensorBoard logging into run_dir/tensorboard (CPU unless a GPU is asked).

    `rl.mixed_precision` is honoured on CPU too (torch's CPU autocast runs bf16), so a CPU run takes the same
    precision path as a GPU run of the same preset.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    return Accelerator(cpu=cpu, mixed_precision=config.rl.mixed_precision, log_with="tensorboard",
                       project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir)))


def build_editor(config: RunConfig, device: torch.device):
    """The grid editor with a fresh trainable LoRA (`rl.lora_*`), gradient checkpointing per `rl`."""
    from rl3dedit.editor import KONTEXT_LORA_TARGETS, KontextGridEditor

    editor = KontextGridEditor.from_config(config, device, editor=base_editor_config(config))
    targets = config.rl.lora_targets or list(KONTEXT_LORA_TARGETS)
    editor.add_lora(config.rl.lora_rank, config.rl.lora_alpha, targets, config.rl.lora_init_seed)
    if config.rl.gradient_checkpointing:
        editor.transformer.enable_gradient_checkpointing()
    return editor


def ensure_prepared(config: RunConfig, run_dir: Path, accelerator, editor, manifest: str | Path | None,
                    data_dir: str | Path | None) -> PreparedDataset:
    """A prepared dataset: `data_dir` when it holds a finished index, else the manifest (or the built-in synthetic
    one) prepared into run_dir/data by the main process (resumable) while the others wait."""
    if data_dir is not None and (Path(data_dir) / INDEX_NAME).is_file():
        return PreparedDataset(data_dir)
    target = Path(data_dir) if data_dir is not None else run_dir / "data"
    source = manifest or config.rl.manifest or builtin_manifest_path()
    if accelerator.is_main_process:
        logger.info("preparing %s into %s", source, target)
        with _adapters_off(editor):
            prepare_dataset(config, load_manifest(source), target, editor=editor, device=accelerator.device)
    accelerator.wait_for_everyone()
    return PreparedDataset(target)


def export_adapter(trainer: GRPOTrainer, out_dir: Path, merged: bool) -> Path:
    """Write export/lora (and export/transformer.safetensors when `merged`), with EMA weights swapped in."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = swapped_in(trainer.ema, trainer.params) if trainer.ema is not None else nullcontext()
    with ctx:
        trainer.editor.save_lora(out_dir / "lora")
        if merged:
            trainer.editor.save_merged_transformer(out_dir / "transformer.safetensors")
    return out_dir


def run_training(config: RunConfig, out_dir: str | Path, *, manifest: str | Path | None = None,
                 data_dir: str | Path | None = None, max_updates: int | None = None, resume: bool = False,
                 reward_fn: RewardFn | None = None, export_merged: bool = False,
                 progress: Progress | None = None) -> TrainResult:
    """Train the grid editor with GRPO and export the adapter (see the module docstring for the folder).

    `reward_fn` defaults to the composite reward of `config` (`rewards.build_composite_reward`). Without
    `resume`, an out_dir that already holds checkpoints is refused (pass resume=True to continue it). A folder
    rl3dedit did not write is refused (`files.claimed_dir`); a failed first run removes the folder it created
    unless it holds checkpoints or prepared data to resume from.
    """
    run_dir = Path(out_dir)
    # only the main process holds the folder (under `accelerate launch` every process runs this function)
    is_main = int(os.environ.get("RANK", "0")) == 0
    held = claimed_dir(run_dir, "training run", keep_on_error=_holds_resumable_work) if is_main else nullcontext()
    with held:
        return _train(config, run_dir, manifest=manifest, data_dir=data_dir, max_updates=max_updates, resume=resume,
                      reward_fn=reward_fn, export_merged=export_merged, progress=progress)


def _holds_resumable_work(run_dir: Path) -> bool:
    from rl3dedit.rl.checkpoint import latest_checkpoint

    return latest_checkpoint(run_dir) is not None or (run_dir / "data" / INDEX_NAME).is_file()


def _train(config: RunConfig, run_dir: Path, *, manifest: str | Path | None, data_dir: str | Path | None,
           max_updates: int | None, resume: bool, reward_fn: RewardFn | None, export_merged: bool,
           progress: Progress | None) -> TrainResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = build_accelerator(config, run_dir)
    from rl3dedit.rl.checkpoint import latest_checkpoint

    if not resume and latest_checkpoint(run_dir) is not None:
        raise FileExistsError(f"{run_dir} already holds checkpoints; pass --resume to continue it or choose a new "
                              "--out folder")
    # models load first so missing weights fail before anything is written or prepared
    editor = build_editor(config, accelerator.device)
    if reward_fn is None:
        from rl3dedit.rewards import build_composite_reward

        reward_fn = build_composite_reward(config, accelerator.device).score
    dataset = ensure_prepared(config, run_dir, accelerator, editor, manifest, data_dir)
    trainer = GRPOTrainer(config, editor, dataset, reward_fn, run_dir, accelerator)
    if resume:
        trainer.resume()
    if accelerator.is_main_process:  # only once resuming worked: a refused resume leaves the run's files as they were
        from rl3dedit.config import dump_config

        dump_config(config, run_dir / "config.yaml")
        write_json(run_dir / "run.json", {
            "seed": config.seed, "num_processes": accelerator.num_processes, "device": str(accelerator.device),
            "mixed_precision": accelerator.mixed_precision,
            "provenance": provenance()})
    accelerator.init_trackers("tensorboard")
    if accelerator.is_main_process and trainer.update == 0:
        _log_hparams(accelerator, config)
    try:
        result = trainer.train(max_updates, progress=progress)
        if trainer.update % config.rl.checkpoint_every != 0:
            trainer.save_checkpoint()
        if accelerator.is_main_process:
            result.export_dir = export_adapter(trainer, run_dir / "export", export_merged)
    finally:
        accelerator.end_training()
    return result


def _log_hparams(accelerator, config: RunConfig) -> None:
    """Record the rl.* settings once per run, in a fixed `hparams` sub-run. accelerate's and torch's default names
    that sub-run after the wall clock, so every start and resume added another float-named folder to TensorBoard."""
    writer = accelerator.get_tracker("tensorboard", unwrap=True)
    writer.add_hparams(_flat_hparams(config), metric_dict={}, run_name="hparams")
    writer.flush()


def _flat_hparams(config: RunConfig) -> dict:
    """Scalar rl.* settings for TensorBoard's hparams (it accepts only int/float/str/bool)."""
    return {f"rl/{k}": v for k, v in config.rl.model_dump().items() if isinstance(v, (int, float, str, bool))}


def _adapters_off(editor):
    from rl3dedit.editor import adapters_disabled

    return adapters_disabled(editor.transformer)

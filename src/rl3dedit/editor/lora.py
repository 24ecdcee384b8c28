"""LoRA on the FLUX transformer through peft (diffusers' `add_adapter`), its export and a merged single-file export.

Targets: the 13 FLUX/Kontext modules of Flow-GRPO (docs/references.md §3) and diffusers' Kontext
DreamBooth script; `proj_out` is left out on purpose (it would also match the top-level output projection).
Gaussian init makes lora_B = 0, so a fresh adapter changes nothing and the first GRPO ratio is exactly 1.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from diffusers import FluxKontextPipeline, FluxTransformer2DModel

from rl3dedit.files import atomic_dir, atomic_path

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"
KONTEXT_LORA_TARGETS: tuple[str, ...] = (
    "attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0",
    "attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    "proj_mlp",
)
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def has_lora(transformer: FluxTransformer2DModel) -> bool:
    return bool(getattr(transformer, "peft_config", None))


def add_lora(transformer: FluxTransformer2DModel, rank: int = 32, alpha: float = 32,
             target_modules: tuple[str, ...] | list[str] = KONTEXT_LORA_TARGETS, init_seed: int = 0,
             dtype: torch.dtype | None = torch.float32) -> None:
    """Attach a trainable LoRA adapter (lora_A ~ N(0, 1/r²), lora_B = 0) and freeze every base weight.

    RL3DEdit (arXiv 2603.03143) Sec. 5.1: rank 32, alpha 32. The init draws from the global RNG inside `fork_rng`
    seeded with `init_seed`, so it is reproducible and leaves the caller's RNG alone. The LoRA weights are kept in
    `dtype` (fp32 by default, also under a bf16 transformer: as Flow-GRPO; peft casts the layer input to it);
    `None` keeps the transformer's dtype.
    """
    from peft import LoraConfig

    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {rank}")
    if has_lora(transformer):
        raise ValueError("the transformer already has a LoRA adapter; load or train that one instead")
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(target_modules))
    transformer.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        transformer.add_adapter(config, adapter_name=ADAPTER_NAME)
    for name, param in transformer.named_parameters():
        param.requires_grad_("lora_" in name)
        if dtype is not None and "lora_" in name:
            param.data = param.data.to(dtype)
    logger.info("LoRA r=%d alpha=%s on %d modules: %d trainable parameters", rank, alpha,
                sum(1 for n, _ in transformer.named_modules() if n.endswith(".lora_A")),
                sum(p.numel() for p in lora_parameters(transformer)))


def lora_parameters(transformer: FluxTransformer2DModel) -> list[torch.nn.Parameter]:
    """The LoRA parameters (lora_A / lora_B weights), in module order."""
    return [p for name, p in transformer.named_parameters() if "lora_" in name]


@contextlib.contextmanager
def adapters_disabled(transformer: FluxTransformer2DModel) -> Iterator[None]:
    """Run the base model (the KL reference policy, as in Flow-GRPO) inside the block; adapters come back after."""
    if not has_lora(transformer):
        yield
        return
    transformer.disable_adapters()
    try:
        yield
    finally:
        transformer.enable_adapters()


def _lora_state_dict(transformer: FluxTransformer2DModel) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME).items()}


def save_lora(transformer: FluxTransformer2DModel, folder: str | Path) -> Path:
    """Write the adapter as `folder/pytorch_lora_weights.safetensors` in diffusers' pipeline LoRA format
    (keys prefixed `transformer.`, peft config in the metadata): `FluxKontextPipeline.load_lora_weights(folder)`
    and `load_lora` read it. Written to a temporary folder and renamed."""
    if not has_lora(transformer):
        raise ValueError("the transformer has no LoRA adapter to save (call add_lora first)")
    folder = Path(folder)
    metadata = transformer.peft_config[ADAPTER_NAME].to_dict()
    with atomic_dir(folder) as tmp:
        FluxKontextPipeline.save_lora_weights(
            str(tmp), transformer_lora_layers=_lora_state_dict(transformer),
            transformer_lora_adapter_metadata=metadata, weight_name=LORA_WEIGHT_NAME,
        )
    return folder


def load_lora_weights_checked(pipe: FluxKontextPipeline, folder: str | Path) -> None:
    """`pipe.load_lora_weights(folder)` for inference, refusing what diffusers would ignore or crash on: a file it
    cannot read, weights of another rank than their config, or keys that match none of the transformer's modules
    (diffusers only logs those and edits with the bare model). Errors are `InputError`s naming the folder."""
    from rl3dedit.errors import InputError
    from rl3dedit.files import read_weights

    folder = Path(folder)
    weight_file = folder / LORA_WEIGHT_NAME
    if weight_file.is_file():
        read_weights(weight_file, "LoRA weights file")  # corrupt, empty, pickled or NaN files fail here, by name
    try:
        pipe.load_lora_weights(str(folder), adapter_name=ADAPTER_NAME)
    except (ValueError, RuntimeError, KeyError, OSError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])[:300] if first else type(exc).__name__
        raise InputError(f"LoRA folder {folder}: does not fit the editor's transformer (wrong rank or targets?): "
                         f"{detail}") from None
    if not has_lora(pipe.transformer):
        raise InputError(f"LoRA folder {folder}: none of its keys match a module of the editor's transformer, so it "
                         "would change nothing; was it trained for another model?")


def load_lora(transformer: FluxTransformer2DModel, folder: str | Path) -> None:
    """Load an adapter written by `save_lora` (or any diffusers Flux LoRA folder) as the trainable adapter."""
    path = Path(folder) / LORA_WEIGHT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file {path} does not exist; expected a folder written by save_lora")
    if has_lora(transformer):
        transformer.delete_adapters(ADAPTER_NAME)
    state, metadata = FluxKontextPipeline.lora_state_dict(str(folder), weight_name=LORA_WEIGHT_NAME,
                                                          return_lora_metadata=True)
    transformer.load_lora_adapter(state, prefix="transformer", adapter_name=ADAPTER_NAME, metadata=metadata)
    for name, param in transformer.named_parameters():
        param.requires_grad_("lora_" in name)


def merged_state_dict(transformer: FluxTransformer2DModel) -> dict[str, torch.Tensor]:
    """The transformer's weights with the LoRA folded in, in diffusers' key layout (the adapter is left intact)."""
    state: dict[str, torch.Tensor] = {}
    modules = dict(transformer.named_modules())
    for name, tensor in transformer.state_dict().items():
        if "lora_" in name:
            continue
        clean = name.replace(".base_layer.", ".")
        owner = modules.get(name.rsplit(".", 2)[0]) if ".base_layer." in name else None
        if owner is not None and name.endswith("base_layer.weight") and hasattr(owner, "get_delta_weight"):
            tensor = tensor + owner.get_delta_weight(ADAPTER_NAME).to(tensor.dtype)
        state[clean] = tensor.detach().contiguous().clone()
    return state


def save_merged_transformer(transformer: FluxTransformer2DModel, path: str | Path) -> Path:
    """Write the LoRA-merged transformer as one safetensors file in diffusers' key layout.

    `load_pipeline(EditorConfig(transformer_file=path, ...))` loads it back with a strict key/shape check (BFL-layout
    files such as the released RL3DEdit weights take the `from_single_file` route instead; see `components`).
    """
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(merged_state_dict(transformer), str(tmp), metadata={"format": "pt", "layout": "diffusers"})
    return path

"""Building a `FluxKontextPipeline`: the real one (hub id / local folder, optional single-file transformer, int8
quantisation and LoRA) and a tiny random one that runs offline with the real classes and real tokenizers built in code.

Single-file transformers come in two key layouts (RL3DEdit release, https://huggingface.co/exander/RL3DEdit):
- the original BFL layout (`double_blocks.0.img_attn.qkv.weight`, ...), e.g. the released
  `exander/RL3DEdit/rl3dedit-flux-kontext.safetensors`: converted by `FluxTransformer2DModel.from_single_file`,
  which needs the base model's transformer config;
- diffusers' own layout (`transformer_blocks.0.attn.to_q.weight`, ...), written by `save_merged_transformer`:
  every key and shape checked against the configured model first, then read by the same loader.
Either way the transformer is built once, from the file, and handed to the pipeline.
"""

from __future__ import annotations

import gc
import logging
import string
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

from rl3dedit import hub
from rl3dedit.editor.config import EditorConfig
from rl3dedit.errors import HubError, InputError, RL3DEditError

logger = logging.getLogger(__name__)


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """diffusers 0.42 renamed `torch_dtype` to `dtype` and warns on the old name; older releases know only the old."""
    import diffusers
    from packaging.version import Version

    return {"dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype": dtype}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BFL_KEY_MARKERS = ("double_blocks.", "single_blocks.", "img_in.")


TINY_TRANSFORMER = dict(
    patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
    joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8), guidance_embeds=True,
)
"""`FluxTransformer2DModel` arguments of the tiny pipeline's transformer."""


TEMPLATE_WORDS = ("in the 3x3 grid maintaining consistent 3D positioning orientation and scale across all nine views "
                  "while keeping rest of scene background unchanged make turn into")


class MissingModelError(RL3DEditError, FileNotFoundError):
    """A real editor model (weights) is not available locally and cannot be fetched."""


# ----------------------------------------------------------------------------------------------- tiny offline build
def build_tiny_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A real byte-level BPE `CLIPTokenizer` built in memory (no files, no hub).

    Vocabulary: `<|startoftext|>` = 0, `<|endoftext|>` = 1 (also pad), the 256 byte-level symbols, the same symbols
    with the `</w>` end-of-word suffix, and a few merges for frequent English pairs (514 + merges tokens in total).
    Matches `build_tiny_clip_text_config()` (bos 0, eos 1, pad 1).
    """
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    for symbol in alphabet:
        vocab[symbol + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    for left, right in (("t", "h"), ("th", "e</w>"), ("i", "n"), ("a", "n"), ("r", "e"), ("o", "n"), ("e", "r"),
                        ("a", "l"), ("v", "i"), ("e", "w</w>"), ("vi", "ew</w>"), ("s", "</w>")):
        merged = left + right
        if left not in vocab or right not in vocab:
            continue
        vocab.setdefault(merged, len(vocab))
        merges.append((left, right))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def build_tiny_t5_tokenizer(model_max_length: int = 512) -> T5Tokenizer:
    """A real Unigram T5 tokenizer (`T5TokenizerFast` in transformers 5 is `T5Tokenizer`) built in memory.

    Pieces: `<pad>` 0, `</s>` 1, `<unk>` 2, the word-start marker, and printable ASCII characters with and without
    the marker, and the grid template's words (~215 pieces); no sentinel ids.
    """
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for char in string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation:
        pieces.append((char, -5.0))
        pieces.append(("\u2581" + char, -6.0))
    # Whole words of the grid template, so templated prompts stay short enough for the tiny preset's T5 length.
    for word in sorted(set(TEMPLATE_WORDS.split())):
        pieces.append(("\u2581" + word, -3.0))
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def build_tiny_clip_text_config(vocab_size: int = 600) -> CLIPTextConfig:
    """CLIP text config matching `build_tiny_clip_tokenizer` (eos 1 makes pooling pick the real EOS position)."""
    return CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size, hidden_act="gelu", projection_dim=32,
        max_position_embeddings=77,
    )


def build_tiny_pipeline(seed: int = 0) -> FluxKontextPipeline:
    """A random tiny FLUX.1-Kontext pipeline with the real classes and shapes that matter, fully offline.

    - transformer: `FluxTransformer2DModel`, 1 double + 1 single block, 2 heads x 16, **guidance embedding on**
      (as Kontext-dev), in_channels 64 (16 latent channels x 2x2 packing), text width 32, RoPE axes (4, 4, 8);
    - VAE: `AutoencoderKL` with 4 blocks (vae_scale_factor 8 as the real VAE), 16 latent channels, the real
      shift/scaling factors (0.1159 / 0.3611): a 192x192 grid becomes 24x24 latents, 144 packed tokens;
    - text: `CLIPTextModel` (pooled 32) + `T5EncoderModel` (width 32) with tokenizers built in code;
    - scheduler: FLUX-dev's dynamic-shift `FlowMatchEulerDiscreteScheduler` (as FLUX.1-Kontext-dev's scheduler config).
    Weights are drawn from `torch.Generator`-free global RNG inside `torch.random.fork_rng`, seeded with `seed`, so
    the build is deterministic and leaves the caller's RNG untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(**TINY_TRANSFORMER)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
            latent_channels=16, norm_num_groups=4, sample_size=32, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.1159, scaling_factor=0.3611,
        )
        text_encoder = CLIPTextModel(build_tiny_clip_text_config())
        text_encoder_2 = T5EncoderModel(
            T5Config(vocab_size=256, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
        )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipe = FluxKontextPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder.eval(), tokenizer=build_tiny_clip_tokenizer(),
        text_encoder_2=text_encoder_2.eval(), tokenizer_2=build_tiny_t5_tokenizer(), transformer=transformer.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------------ real model loading
def resolve_model_folder(model: str) -> str:
    """A local diffusers folder, or a hub id usable right now; otherwise `MissingModelError` naming the fix."""
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise MissingModelError(
                f"editor model folder {path} has no model_index.json: expected a diffusers FluxKontextPipeline folder "
                "(e.g. a download of black-forest-labs/FLUX.1-Kontext-dev); pass it with --editor-model PATH"
            )
        return str(path)
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise MissingModelError(
            f"editor model {model!r} is not an existing local folder (nor a hub id owner/name); pass "
            "--editor-model PATH to a diffusers FLUX.1-Kontext folder, or editor.model: tiny for the offline test model"
        )
    from rl3dedit.hub import resolve

    # fails within the hub deadline, with the true reason (offline, unreachable, silent, gated, missing)
    try:
        found = resolve(model, "model_index.json", what="editor model", hint="download it first (`hf download`, "
                        "gated: accept the licence) or pass --editor-model PATH to a local diffusers folder")
    except HubError as exc:
        raise MissingModelError(str(exc)) from None
    # a cached copy the hub cannot confirm is loaded from its snapshot folder, so diffusers makes no network call
    return str(found.path.parent) if found.local_only and found.path is not None else model


def resolve_weight_file(spec: str) -> str:
    """A local file, or `owner/repo/file.safetensors` fetched from the hub (cache only when offline)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return str(path)
    parts = spec.split("/")
    if len(parts) < 3 or path.exists() or spec.startswith((".", "/", "~")):
        raise MissingModelError(
            f"transformer file {spec!r} does not exist; pass --transformer-file PATH to a .safetensors file, or "
            "owner/repo/file.safetensors (e.g. exander/RL3DEdit/rl3dedit-flux-kontext.safetensors)"
        )
    from rl3dedit.hub import hub_file

    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        return str(hub_file(repo_id, filename, what="transformer file",
                            hint="pass --transformer-file PATH to a local .safetensors file"))
    except HubError as exc:
        raise MissingModelError(str(exc)) from None


def _file_layout(path: str) -> str:
    """`bfl` or `diffusers`, from the key names of a safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as handle:
            keys = list(handle.keys())
    except (SafetensorError, OSError) as exc:  # empty, truncated, or a pickle under a .safetensors name
        raise InputError(f"{path}: not a readable safetensors transformer file ({exc})") from None
    if not keys:
        raise InputError(f"{path}: the transformer file holds no tensors")
    if any(key.startswith(BFL_KEY_MARKERS) or ".double_blocks." in key for key in keys):
        return "bfl"
    return "diffusers"


def _check_file_matches(path: str, expected: dict[str, torch.Size]) -> None:
    """Every key and shape of the diffusers-layout file at `path` equals the transformer's (read from the header)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        found = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(found) & set(expected) if found[k] != tuple(expected[k]))
    if missing or unexpected or wrong:
        raise ValueError(
            f"transformer file {path} does not match the pipeline's transformer: "
            f"missing keys {missing[:8]} ({len(missing)}), unexpected keys {unexpected[:8]} ({len(unexpected)}), "
            f"wrong shapes {[(k, found[k], tuple(expected[k])) for k in wrong[:4]]} ({len(wrong)})"
        )


def _quantization_config(quantize: str):
    """diffusers' torchao config for `EditorConfig.quantize` (None for "none"); torchao runs on CPU and CUDA."""
    if quantize == "none":
        return None
    try:
        from torchao.quantization import Int8WeightOnlyConfig
    except ImportError as exc:
        raise MissingModelError(
            f"editor.quantize={quantize!r} needs torchao (pip install torchao), which is not installed"
        ) from exc
    from diffusers import TorchAoConfig

    return TorchAoConfig(Int8WeightOnlyConfig())


def load_transformer_file(path: str, dtype: torch.dtype, base: str | None,
                          quantization: Any = None) -> FluxTransformer2DModel:
    """The transformer stored in one file, BFL or diffusers key layout (module docstring), built once.

    `base` is the pipeline's hub id or folder, whose transformer/config.json describes the model (None: the tiny
    build). The weights are read straight into the model (`from_single_file` with `config=base`), never on top of
    a loaded base transformer, so host memory holds one copy. A diffusers-layout file is first checked key by key
    and shape by shape against the configured model (built on the meta device, no memory).
    """
    layout = _file_layout(path)
    if base is None:
        if layout == "bfl":
            raise ValueError(
                f"{path} is in the BFL single-file layout, which needs a real base model for its config; set "
                "editor.model (--editor-model) to a FLUX.1-Kontext folder or hub id"
            )
        from safetensors.torch import load_file

        model = FluxTransformer2DModel(**TINY_TRANSFORMER)
        _check_file_matches(path, {k: v.shape for k, v in model.state_dict().items()})
        model.load_state_dict(load_file(path))
        return model.to(dtype).eval()
    if layout == "diffusers":
        from accelerate import init_empty_weights

        config = FluxTransformer2DModel.load_config(base, subfolder="transformer", local_files_only=hub.offline())
        with init_empty_weights():
            empty = FluxTransformer2DModel.from_config(config)
        _check_file_matches(path, {k: v.shape for k, v in empty.state_dict().items()})
    extra = {} if quantization is None else {"quantization_config": quantization}
    return FluxTransformer2DModel.from_single_file(
        path, config=base, subfolder="transformer", **_dtype_kwarg(dtype), local_files_only=hub.offline(), **extra
    )


def _load_transformer(config: EditorConfig, source: str | None, dtype: torch.dtype) -> FluxTransformer2DModel | None:
    """The transformer to hand to the pipeline, or None to let `from_pretrained` load the base one as it is."""
    quantization = _quantization_config(config.quantize)
    if quantization is not None and source is None:
        raise ValueError(
            "editor.quantize needs a real model (a diffusers folder or hub id); the tiny build has nothing to "
            "quantise (save it with save_pretrained and pass that folder to try quantisation offline)"
        )
    if config.transformer_file:
        return load_transformer_file(resolve_weight_file(config.transformer_file), dtype, source, quantization)
    if quantization is not None:
        return FluxTransformer2DModel.from_pretrained(
            source, subfolder="transformer", **_dtype_kwarg(dtype), quantization_config=quantization,
            local_files_only=hub.offline(),
        )
    return None


def _lora_dir(config: EditorConfig) -> Path | None:
    if not config.lora:
        return None
    lora_dir = Path(config.lora).expanduser()
    if not lora_dir.is_dir():
        raise MissingModelError(f"LoRA folder {lora_dir} does not exist; pass --lora PATH to a saved adapter folder")
    return lora_dir


def check_editor_sources(config: EditorConfig) -> None:
    """Fail fast without loading any model: the model folder or hub id, the transformer file (fetched into the
    hub cache when it is a repo file and the hub is reachable), the LoRA folder and the quantisation backend
    all resolve, and the options fit together. Raises what `load_pipeline` would raise."""
    source = None if config.model == "tiny" else resolve_model_folder(config.model)
    if _quantization_config(config.quantize) is not None and source is None:
        raise ValueError("editor.quantize needs a real model (a diffusers folder or hub id), not the tiny build")
    if config.transformer_file:
        path = resolve_weight_file(config.transformer_file)
        if source is None and _file_layout(path) == "bfl":
            raise ValueError(f"{path} is in the BFL single-file layout, which needs a real base model for its "
                             "config; set editor.model (--editor-model) to a FLUX.1-Kontext folder or hub id")
    _lora_dir(config)


def release_pipeline(pipe: FluxKontextPipeline) -> None:
    """Free a pipeline's weights now, not at some later garbage collection.

    diffusers' hook registry (`module._diffusers_hook`) refers back to its module, a reference cycle that `del`
    cannot free: without this the FLUX transformer (22 GiB in bf16) stays resident through verification and the
    refit. Removes the offload hooks, drops every component from the pipeline, collects cycles and returns the
    CUDA cache. References held elsewhere (e.g. a LoRA optimiser) keep their tensors alive, as they must.
    """
    pipe.remove_all_hooks()
    for name in list(pipe.components):
        setattr(pipe, name, None)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_pipeline(config: EditorConfig, device: torch.device | str) -> FluxKontextPipeline:
    """The editor pipeline described by `config`, on `device` (or offloaded to it).

    `config.model`: `tiny` (`build_tiny_pipeline(config.tiny_seed)`), a hub id (e.g. black-forest-labs/FLUX.1-Kontext-
    dev) or a local diffusers folder, loaded with `FluxKontextPipeline.from_pretrained` (never trust_remote_code).
    `config.transformer_file` (BFL or diffusers layout, local or owner/repo/file) and `config.quantize` build the
    transformer first, which is handed to the pipeline so the base transformer is never loaded as well;
    `config.lora` loads a LoRA folder written by `save_lora` / `save_lora_weights`; `config.offload` places the
    components (CUDA only: on other devices everything simply moves to `device`).
    A missing model raises `MissingModelError` at once, naming the option to pass.
    """
    dtype = DTYPES[config.dtype]
    device = torch.device(device)
    source = None if config.model == "tiny" else resolve_model_folder(config.model)
    transformer = _load_transformer(config, source, dtype)
    if source is None:
        pipe = build_tiny_pipeline(config.tiny_seed)
        if transformer is not None:
            pipe.transformer = transformer
        pipe.to(dtype=dtype)
    else:
        given = {} if transformer is None else {"transformer": transformer}
        try:
            pipe = FluxKontextPipeline.from_pretrained(source, **_dtype_kwarg(dtype), local_files_only=hub.offline(), **given)
        except OSError as exc:
            raise MissingModelError(
                f"could not load the editor model {config.model!r} ({exc}); pass --editor-model PATH to a local "
                "diffusers FLUX.1-Kontext folder"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
    lora_dir = _lora_dir(config)
    if lora_dir is not None:
        from rl3dedit.editor.lora import load_lora_weights_checked

        load_lora_weights_checked(pipe, lora_dir)
    if config.vae_tiling:
        pipe.vae.enable_tiling()
    if config.offload != "none" and device.type == "cuda":
        if config.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
    else:
        if config.offload != "none":
            logger.info("editor.offload=%s ignored on %s (it only helps on a GPU)", config.offload, device)
        pipe.to(device)
    logger.info("editor pipeline %s (%s, offload %s, quantize %s) ready on %s", config.model, config.dtype,
                config.offload, config.quantize, device)
    return pipe

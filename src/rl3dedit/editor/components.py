"""Building a `FluxKontextPipeline`: the real one (hub id / local folder, optional single-file transformer and LoRA)
and a tiny random one that runs offline with the real classes and real tokenizers built in code.

Single-file transformers come in two key layouts (`flow_grpo.md` §16.1; paper.md §13.2):
- the original BFL layout (`double_blocks.0.img_attn.qkv.weight`, ...), e.g. the released
  `exander/RL3DEdit/rl3dedit-flux-kontext.safetensors`: loaded with `FluxTransformer2DModel.from_single_file`,
  which converts the keys and needs the base model's transformer config;
- diffusers' own layout (`transformer_blocks.0.attn.to_q.weight`, ...), written by `save_merged_transformer`:
  loaded into the pipeline's transformer with a strict `load_state_dict` (every key and shape checked).
"""

from __future__ import annotations

import logging
import os
import string
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

from rl3dedit.editor.config import EditorConfig

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BFL_KEY_MARKERS = ("double_blocks.", "single_blocks.", "img_in.")


TEMPLATE_WORDS = ("in the 3x3 grid maintaining consistent 3D positioning orientation and scale across all nine views "
                  "while keeping rest of scene background unchanged make turn into")


class MissingModelError(FileNotFoundError):
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
    - scheduler: FLUX-dev's dynamic-shift `FlowMatchEulerDiscreteScheduler` (`flow_grpo.md` §16.1).
    Weights are drawn from `torch.Generator`-free global RNG inside `torch.random.fork_rng`, seeded with `seed`, so
    the build is deterministic and leaves the caller's RNG untouched (`flow_grpo.md` §16.11).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
            guidance_embeds=True,
        )
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
def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


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
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "model_index.json")
    if _offline() and not isinstance(cached, str):
        raise MissingModelError(
            f"editor model {model!r} is a hub id, but HF_HUB_OFFLINE is set and it is not in the local cache; "
            "download it first (huggingface-cli download, gated: accept the licence) or pass --editor-model PATH to a "
            "local diffusers folder"
        )
    return model


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
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        return hf_hub_download(repo_id, filename, local_files_only=_offline())
    except LocalEntryNotFoundError as exc:
        raise MissingModelError(
            f"transformer file {filename!r} from {repo_id!r} is not in the local cache and HF_HUB_OFFLINE is set; "
            "download it first or pass --transformer-file PATH to a local .safetensors file"
        ) from exc
    except Exception as exc:  # network errors, missing repos and gated repos all mean "not available"
        raise MissingModelError(
            f"could not fetch {filename!r} from {repo_id!r} ({type(exc).__name__}: {exc}); pass --transformer-file "
            "PATH to a local .safetensors file"
        ) from exc


def _file_layout(path: str) -> str:
    """`bfl` or `diffusers`, from the key names of a safetensors file."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        keys = list(handle.keys())
    if any(key.startswith(BFL_KEY_MARKERS) or ".double_blocks." in key for key in keys):
        return "bfl"
    return "diffusers"


def load_transformer_file(pipe: FluxKontextPipeline, path: str, dtype: torch.dtype, base: str | None) -> None:
    """Replace `pipe.transformer` weights from a single file, in BFL or diffusers key layout (module docstring).

    `base` is the pipeline's hub id or folder: a BFL file takes its transformer config from `base`/transformer.
    """
    if _file_layout(path) == "bfl":
        if base is None:
            raise ValueError(
                f"{path} is in the BFL single-file layout, which needs a real base model for its config; set "
                "editor.model (--editor-model) to a FLUX.1-Kontext folder or hub id"
            )
        pipe.transformer = FluxTransformer2DModel.from_single_file(
            path, config=base, subfolder="transformer", torch_dtype=dtype, local_files_only=_offline()
        )
        return
    from safetensors.torch import load_file

    state = load_file(path)
    result = pipe.transformer.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"transformer file {path} does not match the pipeline's transformer: "
            f"missing keys {result.missing_keys[:8]} ({len(result.missing_keys)}), "
            f"unexpected keys {result.unexpected_keys[:8]} ({len(result.unexpected_keys)})"
        )
    pipe.transformer.to(dtype)


def load_pipeline(config: EditorConfig, device: torch.device | str) -> FluxKontextPipeline:
    """The editor pipeline described by `config`, on `device` (or CPU-offloaded).

    `config.model`: `tiny` (`build_tiny_pipeline(config.tiny_seed)`), a hub id (e.g. black-forest-labs/FLUX.1-Kontext-
    dev) or a local diffusers folder, loaded with `FluxKontextPipeline.from_pretrained` (never trust_remote_code).
    `config.transformer_file` replaces the transformer weights (BFL or diffusers layout, local or
    owner/repo/file); `config.lora` loads a LoRA folder written by `save_lora` / `save_lora_weights`.
    A missing model raises `MissingModelError` at once, naming the option to pass.
    """
    dtype = DTYPES[config.dtype]
    device = torch.device(device)
    source = None
    if config.model == "tiny":
        pipe = build_tiny_pipeline(config.tiny_seed)
        pipe.to(dtype=dtype)
    else:
        source = resolve_model_folder(config.model)
        try:
            pipe = FluxKontextPipeline.from_pretrained(source, torch_dtype=dtype, local_files_only=_offline())
        except OSError as exc:
            raise MissingModelError(
                f"could not load the editor model {config.model!r} ({exc}); pass --editor-model PATH to a local "
                "diffusers FLUX.1-Kontext folder"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
    if config.transformer_file:
        load_transformer_file(pipe, resolve_weight_file(config.transformer_file), dtype, source)
    if config.lora:
        lora_dir = Path(config.lora).expanduser()
        if not lora_dir.is_dir():
            raise MissingModelError(f"LoRA folder {lora_dir} does not exist; pass --lora PATH to a saved adapter folder")
        pipe.load_lora_weights(str(lora_dir), adapter_name="default")
    if config.vae_tiling:
        pipe.vae.enable_tiling()
    if config.cpu_offload and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        if config.cpu_offload:
            logger.info("cpu_offload ignored on %s (it only helps on a GPU)", device)
        pipe.to(device)
    logger.info("editor pipeline %s (%s) ready on %s", config.model, config.dtype, device)
    return pipe
